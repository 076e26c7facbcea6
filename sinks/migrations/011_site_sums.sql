-- Site scopes without a person scope: shift sums per site and UTC day, and per site and
-- UTC hour, keyed by the site's 64-bit hash. sinks/metric_reads.py reads the days before
-- the cutoff's UTC day from site_totals, that day's whole hours from site_hours, and raw
-- only the cutoff's own hour, where it read every shift of the UTC day (site_days keeps
-- org and role: a city's days there are about a million rows, here about 30,000).
CREATE TABLE IF NOT EXISTS site_totals
(
    site_key    UInt64,
    day         Date,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (site_key, day)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS site_hours
(
    hour        DateTime('UTC'),
    site_key    UInt64,
    shifts      Int64,
    micros      Int64,
    auto_micros Int64
)
ENGINE = SummingMergeTree
ORDER BY (hour, site_key)
SETTINGS non_replicated_deduplication_window = 1000;

-- Per shift version: counted in the hour it starts, and as an auto shift in the hour it
-- ends, like shift_hours; the days are those hours summed (an hour lies in one UTC day).
CREATE MATERIALIZED VIEW IF NOT EXISTS site_hours_mv TO site_hours AS
SELECT toStartOfHour(r.1) AS hour, site_key, sum(r.2 * s) AS shifts,
       sum(r.2 * len) AS micros, sum(r.3 * len) AS auto_micros
FROM
(
    SELECT cityHash64(site_id) AS site_key, toInt64(sign) AS s,
           s * (toUnixTimestamp64Micro(ended_at) - toUnixTimestamp64Micro(started_at)) AS len,
           arrayConcat(
               [(started_at, toInt64(1), toInt64(0))],
               if(reason = 'auto', [(ended_at, toInt64(0), toInt64(1))], [])) AS parts
    FROM shift_deltas
)
ARRAY JOIN parts AS r
GROUP BY hour, site_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS site_totals_mv TO site_totals AS
SELECT site_key, toDate(hour) AS day, sum(shifts) AS shifts, sum(micros) AS micros,
       sum(auto_micros) AS auto_micros
FROM site_hours
GROUP BY site_key, day;

-- What the store already holds, through site_hours and so site_totals too.
FILL site_hours FROM site_hours_mv;
