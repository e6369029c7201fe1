-- The console's fleet page reads a week of every station's presence and status history, and
-- each connector's status before that week: by time across stations, and by connector.
CREATE INDEX status_history_by_connector
    ON status_history (station_id, evse_id, connector_id, occurred_at);
CREATE INDEX status_history_by_time ON status_history (occurred_at);
CREATE INDEX presence_history_by_time ON presence_history (occurred_at);
