-- Who did what: every change made through the API or the CLI, as its event on the log says,
-- with the actor that event carries. A projection like the others: a replay rebuilds it.
CREATE TABLE audit_trail (
    stream      text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor       text,
    kind        text        NOT NULL,
    subject     text        NOT NULL,
    change      jsonb       NOT NULL,
    PRIMARY KEY (stream, partition, "offset")
);

CREATE INDEX audit_trail_by_time ON audit_trail (occurred_at, stream, partition, "offset");
CREATE INDEX audit_trail_by_actor ON audit_trail (actor, occurred_at);
