-- Each running gateway holds a lease, renewed every third of its length. A gateway whose lease
-- ran out is dead (killed, or cut off from PostgreSQL): another gateway appends a CLOSED event,
-- marked detected, for each connection held under that lease, and deletes the lease.
CREATE TABLE gateway_leases (
    gateway_id  text        PRIMARY KEY,
    lease_id    text        NOT NULL UNIQUE,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE INDEX gateway_leases_by_expiry ON gateway_leases (expires_at);

-- A connection is held under its gateway's lease: the row goes with the lease. Rows written by
-- earlier versions have no lease (and no offset) and are closed by the first gateway that finds
-- their gateway without a lease.
ALTER TABLE station_connections
    ADD COLUMN lease_id text REFERENCES gateway_leases (lease_id) ON DELETE CASCADE,
    -- The offset of the connection's OPENED event in the station's partition of
    -- ocpp.connections: of two connections of a station, the later OPENED is the newer one.
    ADD COLUMN opened_offset bigint;

CREATE INDEX station_connections_by_lease ON station_connections (lease_id);
