CREATE OR REPLACE VIEW orphan_checkouts AS
SELECT person_id, event_id, ts, site_id FROM checkouts FINAL WHERE orphan = 1;
