-- The latest published status of every site (one row per site after merges; read FINAL).
CREATE TABLE IF NOT EXISTS site_status
(
    site_id       String,
    at            DateTime64(6, 'UTC'),
    name          String,
    city          String,
    district      String,
    street        Nullable(String),
    community     Nullable(String),
    kind          Nullable(String),
    active        UInt8,
    requirements  Map(String, UInt32),
    lat           Nullable(Float64),
    lon           Nullable(Float64),
    on_post       Map(String, UInt32),
    people        UInt32,
    short         Map(String, UInt32),
    covered       UInt8,
    last_activity Nullable(DateTime64(6, 'UTC')),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY site_id;
