-- A stopped satellite is kept, marked deleted: its commands (ledger) and telemetry still refer
-- to it. Creating the same id again revives the row.
ALTER TABLE satellites ADD COLUMN deleted_at timestamptz;
CREATE INDEX satellites_live ON satellites (id) WHERE deleted_at IS NULL;
