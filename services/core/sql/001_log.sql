-- The PostgreSQL event log: append-only streams, each split into partitions by key.
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

CREATE TABLE processor_state (
    processor text  NOT NULL,
    key       text  NOT NULL,
    state     jsonb NOT NULL,
    PRIMARY KEY (processor, key)
);

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
