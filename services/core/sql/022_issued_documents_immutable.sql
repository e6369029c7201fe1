-- Issued documents (invoices, credit notes, and the CDR each was made from) are history, as the
-- log is: corrections are new documents, never edits. UPDATE, DELETE and TRUNCATE are refused,
-- for every role, superusers included; so is TRUNCATE of the log, which row triggers miss.
-- Only dropping or disabling the trigger (DDL, which needs the table's owner) gets past this;
-- `chargeledger replay --verify` then still shows what was changed.
CREATE FUNCTION issued_documents_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is history: % is not allowed (a correction is a new document: a credit note and a new invoice)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER invoices_issued_are_immutable
    BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION issued_documents_are_immutable();

CREATE TRIGGER invoices_never_truncated
    BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION issued_documents_are_immutable();

CREATE TRIGGER log_entries_never_truncated
    BEFORE TRUNCATE ON log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION log_entries_are_immutable();
