-- Invoicing used to read ledger.sessions itself; it now reads the completion sequence, which
-- the sequencer builds from ledger.sessions. On an upgrade the sequencer starts where invoicing
-- stopped reading, so sessions already invoiced are not sequenced, and billed, a second time.
INSERT INTO consumer_offsets (group_id, stream, partition, next_offset)
SELECT 'invoicing-sequence', stream, partition, next_offset
FROM consumer_offsets
WHERE group_id = 'invoicing-invoices' AND stream = 'ledger.sessions'
ON CONFLICT DO NOTHING;
