-- The PostgreSQL event log: append-only streams, each split into partitions by key.
-- The number of partitions is fixed when the log is created: changing it would move stations to
-- other partitions and break their order.
CREATE TABLE log_settings (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    partitions integer NOT NULL CHECK (partitions > 0)
);

CREATE TABLE log_partitions (
    stream      text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (stream, partition)
);

CREATE TABLE log_entries (
    stream      text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         text        NOT NULL,
    value       bytea       NOT NULL,
    appended_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (stream, partition, "offset")
);

CREATE INDEX log_entries_by_key ON log_entries (stream, key, partition, "offset");

CREATE FUNCTION log_entries_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'log_entries is append-only: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER log_entries_append_only
    BEFORE UPDATE OR DELETE ON log_entries
    FOR EACH ROW EXECUTE FUNCTION log_entries_are_immutable();

-- Consumers commit the next offset they will read in the same transaction as what they write.
CREATE TABLE consumer_offsets (
    group_id    text    NOT NULL,
    stream      text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (group_id, stream, partition)
);

-- A processor's state per key, as UTF-8 JSON (bytea: station input may hold any character).
CREATE TABLE processor_state (
    processor text  NOT NULL,
    key       text  NOT NULL,
    state     bytea NOT NULL,
    PRIMARY KEY (processor, key)
);

-- Outputs of committed batches, waiting to be appended to the log (transactional outbox).
CREATE TABLE outbox (
    id        bigserial PRIMARY KEY,
    processor text      NOT NULL,
    stream    text      NOT NULL,
    key       text      NOT NULL,
    value     bytea     NOT NULL
);

CREATE INDEX outbox_by_processor ON outbox (processor, id);

-- Log entries a processor could not handle; kept for review, never silently dropped.
CREATE TABLE processing_errors (
    processor text        NOT NULL,
    stream    text        NOT NULL,
    partition integer     NOT NULL,
    "offset"  bigint      NOT NULL,
    error     text        NOT NULL,
    noted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (processor, stream, partition, "offset")
);
