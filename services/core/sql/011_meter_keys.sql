-- Meter public keys registered per station (and optionally per meter serial), every version kept.
CREATE TABLE meter_keys (
    station_id text NOT NULL,
    revision int NOT NULL,
    meter_serial text,
    public_key text NOT NULL,
    valid_from timestamptz NOT NULL,
    registered_at timestamptz NOT NULL,
    PRIMARY KEY (station_id, revision)
);
