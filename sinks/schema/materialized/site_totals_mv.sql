CREATE MATERIALIZED VIEW IF NOT EXISTS site_totals_mv TO site_totals AS
SELECT site_key, toDate(hour) AS day, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros
FROM site_hours
GROUP BY site_key, day;
