CREATE OR REPLACE VIEW alerts_current AS
SELECT alert_id, kind, site_id, opened_at, short, people, resolved_at FROM alerts FINAL;
