-- on_post_series_at reads the day's shift versions once (a running sum per district)
-- instead of every stored shift at every moment, and site_inputs_at the shifts on post
-- from one time range of shift_deltas: both as their files in sinks/schema/views say.
VIEW on_post_series_at AS IN SCHEMA;
VIEW site_inputs_at AS IN SCHEMA;
