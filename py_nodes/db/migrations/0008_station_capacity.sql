-- 0008: ground stations' capacity and downtime for the scheduler (issue 17). antennas: how many
-- satellites a station serves at a time. unavailable: windows when it is down, a JSON array of
-- {"from": RFC 3339, "to": RFC 3339} (validated by py_nodes/db/stations.py; the checks here are
-- the shape and a bound on their number).

ALTER TABLE ground_stations
    ADD COLUMN antennas integer NOT NULL DEFAULT 1 CHECK (antennas BETWEEN 1 AND 16),
    ADD COLUMN unavailable jsonb NOT NULL DEFAULT '[]'::jsonb
        CONSTRAINT ground_stations_unavailable_list
        CHECK (jsonb_typeof(unavailable) = 'array' AND jsonb_array_length(unavailable) <= 32);
