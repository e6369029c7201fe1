-- What stations report about themselves: firmware update and diagnostics (log upload) progress
-- and security events, one row per confirmed notification; and the current firmware and
-- diagnostics status of each station, since when.
CREATE TABLE station_notifications (
    stream       text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    station_id   text        NOT NULL,
    kind         text        NOT NULL, -- firmware, diagnostics or security
    action       text        NOT NULL,
    status       text        NOT NULL, -- a security event's type
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    request_id   bigint,
    tech_info    text,
    PRIMARY KEY (stream, partition, "offset")
);

CREATE INDEX station_notifications_by_station ON station_notifications (station_id, kind, occurred_at);

ALTER TABLE station_info
    ADD COLUMN firmware_status          text,
    ADD COLUMN firmware_status_since    timestamptz,
    ADD COLUMN firmware_request_id      bigint,
    ADD COLUMN diagnostics_status       text,
    ADD COLUMN diagnostics_status_since timestamptz,
    ADD COLUMN diagnostics_request_id   bigint;
