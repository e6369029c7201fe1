-- The local time zone of each station for pricing, every version kept.
CREATE TABLE station_time_zones (
    station_id text NOT NULL,
    revision int NOT NULL,
    time_zone text NOT NULL,
    valid_from timestamptz NOT NULL,
    registered_at timestamptz NOT NULL,
    PRIMARY KEY (station_id, revision)
);
