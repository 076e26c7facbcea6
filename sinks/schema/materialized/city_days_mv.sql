CREATE MATERIALIZED VIEW IF NOT EXISTS city_days_mv TO city_days AS
SELECT city_key, toDate(hour) AS day, site_key, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros
FROM city_hours
GROUP BY city_key, day, site_key;
