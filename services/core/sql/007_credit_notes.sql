-- Corrections are new documents: a credit note cancels an invoice and a new invoice replaces it,
-- so one session can have several documents.
ALTER TABLE invoices DROP CONSTRAINT invoices_session_id_key;
ALTER TABLE invoices
    ADD COLUMN document_type text NOT NULL DEFAULT 'invoice', -- invoice or credit_note
    ADD COLUMN cancels       text,  -- credit note: the invoice it cancels
    ADD COLUMN replaces      text;  -- invoice: the invoice it replaces (after a credit note)
CREATE INDEX invoices_by_session ON invoices (session_id);
