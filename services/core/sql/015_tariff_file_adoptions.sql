-- The --tariff file (or the bundled sample) as `up` last adopted it, so that a restart with the
-- same file changes nothing, and a file with another tariff id takes over the default it set.
CREATE TABLE tariff_file_adoptions (
    adopted_at timestamptz NOT NULL,
    tariff_id text NOT NULL,
    document text NOT NULL
);
