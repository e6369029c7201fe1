-- GET /api/v1/sessions pages through every station's sessions in start order, each page
-- starting after the (started_at, session_id) of the last one: keyset pages need this order.
CREATE INDEX sessions_by_start ON sessions (started_at, session_id);
