-- The ledger for every OCPP version: sessions of 2.x transactions (string ids), flags, charging
-- periods and hourly energy; station information, connector status and presence.
ALTER TABLE sessions
    ALTER COLUMN transaction_id DROP NOT NULL,
    ALTER COLUMN meter_start_wh DROP NOT NULL,
    ADD COLUMN transaction_ref  text        NOT NULL DEFAULT '',
    ADD COLUMN ocpp_version     text        NOT NULL DEFAULT 'ocpp1.6',
    ADD COLUMN evse_id          integer,
    ADD COLUMN id_token_type    text,
    ADD COLUMN last_meter_at    timestamptz,
    ADD COLUMN flags            text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN review_required  boolean     NOT NULL DEFAULT false,
    ADD COLUMN charging_periods jsonb       NOT NULL DEFAULT '[]';

CREATE INDEX sessions_for_review ON sessions (station_id) WHERE review_required;

-- A session's energy by the UTC hour of the readings that show it; replaced with each revision.
CREATE TABLE session_energy (
    session_id   text        NOT NULL,
    hour         timestamptz NOT NULL,
    station_id   text        NOT NULL,
    evse_id      integer,
    connector_id integer     NOT NULL,
    id_tag       text,
    energy_wh    bigint      NOT NULL,
    PRIMARY KEY (session_id, hour)
);

CREATE INDEX session_energy_by_hour ON session_energy (hour);

ALTER TABLE invoices
    ALTER COLUMN transaction_id DROP NOT NULL,
    ALTER COLUMN meter_start_wh DROP NOT NULL,
    ADD COLUMN transaction_ref text NOT NULL DEFAULT '';

-- What each station says about itself (BootNotification) and when it was last heard from.
CREATE TABLE station_info (
    station_id        text PRIMARY KEY,
    ocpp_version      text,
    vendor            text,
    model             text,
    serial_number     text,
    firmware_version  text,
    last_boot_at      timestamptz,
    last_heartbeat_at timestamptz,
    last_seen_at      timestamptz
);

-- Each connector's (1.6) or EVSE connector's (2.x) current status; connector 0: the station.
CREATE TABLE connector_status (
    station_id        text        NOT NULL,
    evse_id           integer     NOT NULL, -- -1 for OCPP 1.6, which has no EVSEs
    connector_id      integer     NOT NULL,
    status            text        NOT NULL,
    error_code        text,
    info              text,
    vendor_id         text,
    vendor_error_code text,
    since             timestamptz NOT NULL,
    PRIMARY KEY (station_id, evse_id, connector_id)
);

CREATE TABLE status_history (
    stream            text        NOT NULL,
    partition         integer     NOT NULL,
    "offset"          bigint      NOT NULL,
    station_id        text        NOT NULL,
    evse_id           integer     NOT NULL,
    connector_id      integer     NOT NULL,
    status            text        NOT NULL,
    previous_status   text,
    error_code        text,
    info              text,
    vendor_id         text,
    vendor_error_code text,
    occurred_at       timestamptz NOT NULL,
    PRIMARY KEY (stream, partition, "offset", evse_id, connector_id)
);

CREATE INDEX status_history_by_station ON status_history (station_id, occurred_at);

-- Online while the station's newest connection is open (gateway clock).
CREATE TABLE station_presence (
    station_id    text        PRIMARY KEY,
    online        boolean     NOT NULL,
    connection_id text        NOT NULL,
    gateway_id    text        NOT NULL,
    since         timestamptz NOT NULL
);

CREATE TABLE presence_history (
    stream        text        NOT NULL,
    partition     integer     NOT NULL,
    "offset"      bigint      NOT NULL,
    station_id    text        NOT NULL,
    online        boolean     NOT NULL,
    connection_id text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    PRIMARY KEY (stream, partition, "offset")
);

CREATE INDEX presence_history_by_station ON presence_history (station_id, occurred_at);
