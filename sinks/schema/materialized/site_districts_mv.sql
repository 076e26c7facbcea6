CREATE MATERIALIZED VIEW IF NOT EXISTS site_districts_mv TO site_districts AS
SELECT DISTINCT toDate(started_at) AS day, site_key, city, district FROM filed_shifts;
