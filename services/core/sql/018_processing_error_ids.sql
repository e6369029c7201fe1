-- Each noted processing error gets an id, in the order it was noted: GET
-- /api/v1/processing-errors pages by it.
ALTER TABLE processing_errors ADD COLUMN id bigserial;

CREATE UNIQUE INDEX processing_errors_by_id ON processing_errors (id);
