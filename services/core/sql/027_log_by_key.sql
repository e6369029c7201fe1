-- On the PostgreSQL log the API reads a station's frames from the log itself (by key: the
-- station), not from a copy: the frame index (`frames`) is only written on Kafka now.
CREATE INDEX IF NOT EXISTS log_entries_by_key ON log_entries (stream, key, partition, "offset");
