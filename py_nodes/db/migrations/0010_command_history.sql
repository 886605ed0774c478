-- 0010: the fleet-wide command history (py_nodes/db/command_history.py) reads the ledger newest
-- first by (created_at, id), a page at a time after a cursor: this index serves that order
-- (per satellite, commands_satellite_created already does).
CREATE INDEX commands_created ON commands (created_at, id);
