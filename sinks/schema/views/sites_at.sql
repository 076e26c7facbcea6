-- Site attributes at a cutoff (UTC): each site's latest version by
-- (ts, partition, offset). Sorting and keeping one row per site is several times faster
-- than argMax over that tuple for every column (measured on 30,000 sites: 9 ms against
-- 57 ms with the requirements maps read).
CREATE OR REPLACE VIEW sites_at AS
SELECT site_id, name, city, district, street, community, kind, requirements, active, lat, lon
FROM site_versions
WHERE ts <= {at:DateTime64(6, 'UTC')}
ORDER BY site_id, ts DESC, partition DESC, offset DESC
LIMIT 1 BY site_id;
