CREATE MATERIALIZED VIEW IF NOT EXISTS site_cities_mv TO site_cities AS
SELECT DISTINCT site_key, city_key FROM city_shifts;
