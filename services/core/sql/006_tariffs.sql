-- Tariffs (OCPI 2.2.1 Tariff JSON, every version kept) and their assignment to stations,
-- connectors or as the default. Every change is also an event on the log (config.tariffs,
-- config.tariff-assignments), written through the outbox in the same transaction.
CREATE TABLE tariff_versions (
    tariff_id  text        NOT NULL,
    revision   integer     NOT NULL,
    document   text        NOT NULL, -- the OCPI Tariff JSON as stored (numbers exact)
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz,
    put_at     timestamptz NOT NULL,
    PRIMARY KEY (tariff_id, revision)
);

CREATE TABLE tariff_assignments (
    assignment_id integer     PRIMARY KEY,
    tariff_id     text        NOT NULL,
    station_id    text,        -- NULL: the default for every station
    evse_id       integer,
    connector_id  integer,     -- with station_id: only this connector
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    assigned_at   timestamptz NOT NULL
);
