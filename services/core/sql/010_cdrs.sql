-- The priced OCPI CDR each invoice was made from, as issued.
ALTER TABLE invoices ADD COLUMN cdr text NOT NULL DEFAULT '';
