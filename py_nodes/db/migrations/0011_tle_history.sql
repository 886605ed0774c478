-- 0011: every TLE a satellite has flown (issue 18). A row per element set, open (valid_to NULL)
-- while it is the satellite's current one. Kept by a trigger on satellites, so whichever path
-- changes the TLE (a create, a set_tle command's checkpoint, a revival after deletion) records
-- it, in the same transaction. Rows outlive the satellite (no foreign key, as telemetry).

CREATE TABLE satellite_tle_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    satellite_id  text NOT NULL CHECK (satellite_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    tle_line1     text NOT NULL CHECK (char_length(tle_line1) = 69 AND tle_line1 LIKE '1 %'),
    tle_line2     text NOT NULL CHECK (char_length(tle_line2) = 69 AND tle_line2 LIKE '2 %'),
    valid_from    timestamptz NOT NULL DEFAULT now(),
    valid_to      timestamptz,
    CONSTRAINT satellite_tle_history_ordered CHECK (valid_to >= valid_from)
);
CREATE INDEX satellite_tle_history_satellite ON satellite_tle_history (satellite_id, valid_from);
CREATE UNIQUE INDEX satellite_tle_history_one_open ON satellite_tle_history (satellite_id) WHERE valid_to IS NULL;

-- Closes the open row and opens one for the new TLE (none without a TLE, or once deleted).
CREATE FUNCTION satellite_tle_history_track() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE satellite_tle_history SET valid_to = now() WHERE satellite_id = NEW.id AND valid_to IS NULL;
    IF NEW.tle_line1 IS NOT NULL AND NEW.deleted_at IS NULL THEN
        INSERT INTO satellite_tle_history (satellite_id, tle_line1, tle_line2)
        VALUES (NEW.id, NEW.tle_line1, NEW.tle_line2);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER satellite_tle_history_insert AFTER INSERT ON satellites
    FOR EACH ROW EXECUTE FUNCTION satellite_tle_history_track();
-- The WHEN keeps the function off the checkpoint path (10,000s of rows that keep their TLE).
CREATE TRIGGER satellite_tle_history_update AFTER UPDATE OF tle_line1, tle_line2, deleted_at ON satellites
    FOR EACH ROW WHEN (OLD.tle_line1 IS DISTINCT FROM NEW.tle_line1 OR OLD.tle_line2 IS DISTINCT FROM NEW.tle_line2
                       OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION satellite_tle_history_track();

-- The satellites that had a TLE before this migration: their current one, from their creation.
INSERT INTO satellite_tle_history (satellite_id, tle_line1, tle_line2, valid_from)
SELECT id, tle_line1, tle_line2, created_at FROM satellites WHERE tle_line1 IS NOT NULL AND deleted_at IS NULL;
