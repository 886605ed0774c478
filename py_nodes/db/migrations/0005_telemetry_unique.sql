-- 0005: telemetry is delivered at least once (BEAM sends a batch again until the store confirms
-- it), so a sample is unique per (satellite_id, time) and a batch written twice adds nothing.
DELETE FROM telemetry a USING telemetry b
 WHERE a.satellite_id = b.satellite_id AND a.time = b.time AND a.ctid > b.ctid;
DROP INDEX telemetry_satellite_time;
CREATE UNIQUE INDEX telemetry_satellite_time ON telemetry (satellite_id, time);
