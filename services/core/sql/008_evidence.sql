-- Where each session's figures come from: the log positions of the frames that changed it.
ALTER TABLE sessions ADD COLUMN frame_positions text[] NOT NULL DEFAULT '{}';
