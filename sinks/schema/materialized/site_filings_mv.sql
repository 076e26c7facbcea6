CREATE MATERIALIZED VIEW IF NOT EXISTS site_filings_mv TO site_filings AS
SELECT site_key, started_at, ended_at, sign, city, district FROM filed_shifts;
