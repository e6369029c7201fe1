-- Connector status used to be folded by a processor of its own, 'ledger-station-status', which
-- paired each CALL with its answer apart from 'ledger-sessions'. 'ledger-sessions' now pairs
-- them once and folds both. The two may have stopped at different offsets: the processor goes
-- on from the earlier of the two on each partition, and each station's state says from which
-- offset each part folds (what comes before was folded already). The station-status state
-- goes into the station's state as it is (``_upgrade`` in services/ledger/sessions.py reads it
-- when it loads the state).
-- States are JSON text that json.dumps wrote (ASCII, an object): a key is put in front of the
-- others, so what is there keeps its every byte and order.

CREATE TEMPORARY TABLE upgrade_from ON COMMIT DROP AS
SELECT coalesce(s.partition, t.partition) AS partition,
       coalesce(s.next_offset, 0) AS sessions_from,
       coalesce(t.next_offset, 0) AS status_from
FROM (SELECT partition, next_offset FROM consumer_offsets
      WHERE group_id = 'ledger-sessions' AND stream = 'ocpp.frames') s
FULL JOIN (SELECT partition, next_offset FROM consumer_offsets
           WHERE group_id = 'ledger-station-status' AND stream = 'ocpp.frames') t
    ON s.partition = t.partition
WHERE EXISTS (SELECT 1 FROM consumer_offsets WHERE group_id = 'ledger-station-status');

CREATE TEMPORARY TABLE upgrade_since ON COMMIT DROP AS
SELECT json_build_object(
           'sessions', json_object_agg(partition::text, sessions_from),
           'status', json_object_agg(partition::text, status_from)
       )::text AS since
FROM upgrade_from
HAVING count(*) > 0;

-- A station the station-status processor knew and the sessions processor did not.
INSERT INTO processor_state (processor, key, state)
SELECT 'ledger-sessions', key, convert_to('{}', 'UTF8')
FROM processor_state
WHERE processor = 'ledger-station-status' AND EXISTS (SELECT 1 FROM upgrade_since)
ON CONFLICT (processor, key) DO NOTHING;

UPDATE processor_state m
SET state = convert_to(
        '{"upgrade": {"since": ' || u.since || ', "status": '
        || coalesce(
            (SELECT convert_from(t.state, 'UTF8') FROM processor_state t
             WHERE t.processor = 'ledger-station-status' AND t.key = m.key),
            'null')
        || '}'
        || CASE WHEN convert_from(m.state, 'UTF8') = '{}' THEN '}'
                ELSE ', ' || substr(convert_from(m.state, 'UTF8'), 2) END,
        'UTF8'),
    written_by = NULL
FROM upgrade_since u
WHERE m.processor = 'ledger-sessions' AND position('/' in m.key) = 0;

INSERT INTO consumer_offsets (group_id, stream, partition, next_offset)
SELECT 'ledger-sessions', 'ocpp.frames', partition, least(sessions_from, status_from)
FROM upgrade_from
ON CONFLICT (group_id, stream, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset;

-- Outputs committed but not yet on the log are published by the processor that remains.
UPDATE outbox SET processor = 'ledger-sessions' WHERE processor = 'ledger-station-status';
DELETE FROM processor_state WHERE processor = 'ledger-station-status';
DELETE FROM consumer_offsets WHERE group_id = 'ledger-station-status';
