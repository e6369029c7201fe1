-- Which batch wrote a processor's state: a runner keeps the states it wrote in memory and
-- reads one again only when another writer (a consumer that took the partition over, a reset)
-- has written it since.
ALTER TABLE processor_state ADD COLUMN IF NOT EXISTS written_by text;
