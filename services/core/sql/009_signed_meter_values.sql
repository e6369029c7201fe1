-- What the meter's own signatures (OCMF) say about each invoiced session.
ALTER TABLE invoices
    ADD COLUMN signature_status text NOT NULL DEFAULT 'none',
    ADD COLUMN signed_energy_wh bigint;
