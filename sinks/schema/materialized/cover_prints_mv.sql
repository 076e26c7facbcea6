CREATE MATERIALIZED VIEW IF NOT EXISTS cover_prints_mv TO cover_prints AS
SELECT hour, gen, n, h, v FROM cover_hours WHERE site_key = 0;
