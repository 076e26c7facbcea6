CREATE MATERIALIZED VIEW IF NOT EXISTS site_role_hours_mv TO site_role_hours AS
SELECT hour, site_key, groupArray(role) AS `rolesMap.role`, groupArray(people) AS `rolesMap.people`
FROM
(
    SELECT toDateTime(intDiv(h, 1000000), 'UTC') AS hour, site_key, role, sum(s) AS people
    FROM
    (
        SELECT site_key, role, toInt64(sign) AS s, toUnixTimestamp64Micro(ended_at) AS end_us,
               -- the first whole hour at or after the start
               intDiv(toUnixTimestamp64Micro(started_at) + 3599999999, 3600000000) * 3600000000
                   AS first_us,
               arrayMap(i -> first_us + i * 3600000000,
                        range(toUInt64(greatest(0, intDiv(end_us - first_us + 3599999999,
                                                          3600000000)))))
                   AS hours
        FROM shift_deltas
    )
    ARRAY JOIN hours AS h
    GROUP BY hour, site_key, role
    HAVING people != 0
)
GROUP BY hour, site_key;
