-- Console sessions: a browser logged in as a user. Only a hash of the session id (the cookie)
-- is stored; disabling or removing the user ends its sessions.
CREATE TABLE console_sessions (
    id_hash    text        PRIMARY KEY,
    user_name  text        NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf_token text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
