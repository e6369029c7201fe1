-- Projections. Each row remembers the log position it reflects.
CREATE TABLE frames (
    stream         text        NOT NULL,
    partition      integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    event_id       text        NOT NULL,
    station_id     text        NOT NULL,
    ocpp_version   text        NOT NULL,
    direction      text        NOT NULL,
    message_type   integer,
    rejected       boolean     NOT NULL,
    rejection_reason text,
    unique_id      text,
    action         text,
    raw            bytea       NOT NULL, -- UTF-8 text of the frame, byte-exact (may hold NUL)
    gateway_id     text        NOT NULL,
    connection_id  text        NOT NULL,
    connection_seq bigint      NOT NULL,
    received_at    timestamptz NOT NULL,
    PRIMARY KEY (stream, partition, "offset")
);

CREATE INDEX frames_by_station ON frames (station_id, partition, "offset");

CREATE TABLE sessions (
    session_id     text        PRIMARY KEY,
    revision       integer     NOT NULL,
    station_id     text        NOT NULL,
    connector_id   integer     NOT NULL,
    transaction_id bigint      NOT NULL,
    id_tag         text,
    started_at     timestamptz NOT NULL,
    stopped_at     timestamptz,
    meter_start_wh bigint      NOT NULL,
    meter_stop_wh  bigint,
    last_meter_wh  bigint,
    energy_wh      bigint      NOT NULL,
    stop_reason    text,
    status         text        NOT NULL,
    source_stream    text      NOT NULL,
    source_partition integer   NOT NULL,
    source_offset    bigint    NOT NULL
);

CREATE INDEX sessions_by_station ON sessions (station_id, started_at);

CREATE TABLE invoices (
    invoice_number  text        PRIMARY KEY,
    issuer          text        NOT NULL,
    session_id      text        NOT NULL UNIQUE,
    station_id      text        NOT NULL,
    connector_id    integer     NOT NULL,
    transaction_id  bigint      NOT NULL,
    id_tag          text,
    started_at      timestamptz NOT NULL,
    stopped_at      timestamptz NOT NULL,
    meter_start_wh  bigint      NOT NULL,
    meter_stop_wh   bigint      NOT NULL,
    energy_wh       bigint      NOT NULL,
    tariff_id       text        NOT NULL,
    currency        text        NOT NULL,
    lines           jsonb       NOT NULL,
    total_excl_vat  numeric     NOT NULL,
    total_vat       numeric     NOT NULL,
    total_incl_vat  numeric     NOT NULL,
    source_event_id text        NOT NULL,
    stream          text        NOT NULL,
    partition       integer     NOT NULL,
    "offset"        bigint      NOT NULL
);
