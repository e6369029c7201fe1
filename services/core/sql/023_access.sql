-- People and machines of the HTTP API. Secrets are stored only as hashes (scrypt for passwords,
-- SHA-256 for API tokens, which are long random strings) and never reach the event log.
CREATE TABLE users (
    name          text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role          text        NOT NULL CHECK (role IN ('viewer', 'operator', 'finance', 'admin')),
    password_hash text        NOT NULL,
    enabled       boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    name        text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role        text        NOT NULL CHECK (role IN ('viewer', 'operator', 'finance', 'admin')),
    token_hash  text        NOT NULL UNIQUE,
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
