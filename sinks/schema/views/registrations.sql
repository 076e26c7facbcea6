CREATE OR REPLACE VIEW registrations AS
SELECT person_id, event_id, ts, org, team_id FROM events FINAL WHERE type = 'registered';
