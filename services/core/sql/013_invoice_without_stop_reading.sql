-- A session measured by interval readings only has no meter reading at its stop.
ALTER TABLE invoices ALTER COLUMN meter_stop_wh DROP NOT NULL;
