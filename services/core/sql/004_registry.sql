-- The station and id-token registries. Every change is also appended to the log
-- (config.stations, config.tokens) through the outbox, in the same transaction.
CREATE TABLE stations (
    station_id    text        PRIMARY KEY,
    password_hash text,       -- scrypt; NULL: the station has no HTTP Basic password
    enabled       boolean     NOT NULL,
    revision      integer     NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE id_tokens (
    id_token   text        PRIMARY KEY,  -- as registered; matched case-insensitively
    token_type text,
    status     text        NOT NULL,
    expires_at timestamptz,
    group_id   text,
    account_id text,
    revision   integer     NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE UNIQUE INDEX id_tokens_by_lower ON id_tokens (lower(id_token));

-- What each station's last BootNotification was answered (Accepted / Pending / Rejected).
CREATE TABLE station_boots (
    station_id  text        PRIMARY KEY,
    status      text        NOT NULL,
    answered_at timestamptz NOT NULL
);

-- Which gateway holds each station's connection now (for commands).
CREATE TABLE station_connections (
    station_id    text        PRIMARY KEY,
    connection_id text        NOT NULL,
    gateway_id    text        NOT NULL,
    ocpp_version  text        NOT NULL,
    connected_at  timestamptz NOT NULL
);

-- Commands to stations and their outcome, as the API caller sees them.
CREATE TABLE commands (
    command_id        text        PRIMARY KEY,
    station_id        text        NOT NULL,
    action            text        NOT NULL,
    payload           jsonb       NOT NULL,
    requested_at      timestamptz NOT NULL,
    status            text        NOT NULL,  -- Requested, Answered, CallError, Timeout, Offline
    response          jsonb,
    error_code        text,
    error_description text,
    completed_at      timestamptz
);
