-- site_inputs_at counts the people on post per site and role by the net sign of the shift
-- versions on post (a person's shifts never overlap), not by grouping them per person;
-- metrics_at reads coverage from the cutoff's settled hour when it is up to date, and
-- national, org and role scopes count teams from team_firsts: both as their files in
-- sinks/schema/views say; on_post_series_at sums the changes per district and moment
-- and runs a window over them, where it looked each moment up in a list per district.
VIEW site_inputs_at AS IN SCHEMA;
VIEW metrics_at AS IN SCHEMA;
VIEW on_post_series_at AS IN SCHEMA;
-- metrics_tz reads what the API reads for a national scope (generated, see its file),
-- where it called metrics_at.
VIEW metrics_tz AS IN SCHEMA;
-- org_hours_at: hours and person-times per organisation from the rollups, as an org scope
-- reads them (generated, see its file); the wall and the bulletin read it where they
-- summed team_board_at, which reads every stored shift.
VIEW org_hours_at AS IN SCHEMA;
