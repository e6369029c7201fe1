-- The signed meter values (OCMF records) an invoice was checked with, each with its key:
-- [{"record": "OCMF|...", "public_key": "3059..." or null}], for the customer's own check.
ALTER TABLE invoices ADD COLUMN signed_values jsonb NOT NULL DEFAULT '[]'::jsonb;
