-- One row per site known at `at`: SPEC §6 attributes and people on post, the total missing
-- (`short`, summed over roles), `covered` (the SPEC §4 rule) and a status word for colour:
-- covered, understaffed (short of someone), unstaffed (active, no requirement, nobody on
-- post), inactive.
-- SELECT * FROM site_board_at(at = '2022-03-15 11:00:00')
CREATE OR REPLACE VIEW site_board_at AS
SELECT site_id, name, city, district, street, community, kind, active, lat, lon,
       requirements, on_post, people, required, short, covered,
       multiIf(NOT active, 'inactive', covered, 'covered', short > 0, 'understaffed',
               'unstaffed') AS status,
       last_activity
FROM
(
    SELECT site_id, name, city, district, street, community, kind, active, lat, lon,
           requirements, on_post,
           toUInt32(arraySum(mapValues(on_post))) AS people,
           toUInt32(arraySum(arrayFilter(m -> m > 0, mapValues(requirements)))) AS required,
           toUInt32(arraySum(arrayMap((r, m) -> greatest(toInt64(m) - toInt64(on_post[r]), 0),
                                      mapKeys(requirements), mapValues(requirements)))) AS short,
           active AND if(required = 0, people > 0, short = 0) AS covered,
           last_activity
    FROM site_inputs_at(at = {at:DateTime64(6, 'UTC')})
);
