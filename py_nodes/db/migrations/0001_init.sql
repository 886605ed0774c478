-- 0001: the StellarOps schema. Runs in one transaction (py_nodes/db/migrate.py).
-- Ranges and enums mirror the code: modes from py_nodes/satellite/modes.py, satellite ids and
-- state ranges from docs/protocol-v1.md, station fields from orbital.GroundStation.

-- ---------------------------------------------------------------- satellites
-- One row per satellite: its latest checkpoint (the state an actor resumes from) and its TLE.
-- A checkpoint is written only when newer (updated_at) than the stored one; version counts them.
CREATE TABLE satellites (
    id                  text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name                text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    mode                text NOT NULL DEFAULT 'nominal'
                        CHECK (mode IN ('safe', 'standby', 'nominal', 'science', 'downlink', 'maintenance')),
    energy_pct          double precision NOT NULL DEFAULT 100 CHECK (energy_pct BETWEEN 0 AND 100),
    memory_used_mb      double precision NOT NULL DEFAULT 0 CHECK (memory_used_mb >= 0),
    memory_capacity_mb  double precision NOT NULL DEFAULT 1024
                        CHECK (memory_capacity_mb > 0 AND memory_capacity_mb < 'Infinity'),
    tle_line1           text CHECK (char_length(tle_line1) = 69 AND tle_line1 LIKE '1 %'),
    tle_line2           text CHECK (char_length(tle_line2) = 69 AND tle_line2 LIKE '2 %'),
    applied             bytea[] NOT NULL DEFAULT '{}' CHECK (cardinality(applied) <= 256),  -- newest first
    version             bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT satellites_memory_within_capacity CHECK (memory_used_mb <= memory_capacity_mb),
    CONSTRAINT satellites_tle_pair CHECK ((tle_line1 IS NULL) = (tle_line2 IS NULL))
);

-- ---------------------------------------------------------------- telemetry
-- Time series, appended in COPY batches. No foreign key on purpose: it would cost a lookup per
-- row on the ingest path, and history outlives a satellite's removal.
-- Queries per satellite over a time range use the B-tree; retention and whole-fleet time ranges
-- use the BRIN index (tiny, because rows arrive in time order). Retention: telemetry_prune().
-- When the table grows past what DELETE prunes comfortably, switch to monthly partitions.
CREATE TABLE telemetry (
    satellite_id    text NOT NULL CHECK (satellite_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    time            timestamptz NOT NULL,
    energy_pct      double precision NOT NULL CHECK (energy_pct BETWEEN 0 AND 100),
    memory_used_mb  double precision NOT NULL CHECK (memory_used_mb >= 0 AND memory_used_mb < 'Infinity'),
    mode            text NOT NULL
                    CHECK (mode IN ('safe', 'standby', 'nominal', 'science', 'downlink', 'maintenance')),
    lat_deg         double precision CHECK (lat_deg BETWEEN -90 AND 90),
    lon_deg         double precision CHECK (lon_deg BETWEEN -180 AND 180),
    alt_km          double precision CHECK (alt_km > -100 AND alt_km < 1000000),
    in_sunlight     boolean NOT NULL,
    CONSTRAINT telemetry_position_complete
        CHECK ((lat_deg IS NULL) = (lon_deg IS NULL) AND (lat_deg IS NULL) = (alt_km IS NULL))
);
CREATE INDEX telemetry_satellite_time ON telemetry (satellite_id, time);
CREATE INDEX telemetry_time_brin ON telemetry USING brin (time);

-- Deletes telemetry older than keep_days days; returns how many rows went.
CREATE FUNCTION telemetry_prune(keep_days integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    gone bigint;
BEGIN
    IF keep_days IS NULL OR keep_days < 1 THEN
        RAISE EXCEPTION 'keep_days must be at least 1, got %', keep_days USING ERRCODE = '22023';
    END IF;
    DELETE FROM telemetry WHERE time < now() - make_interval(days => keep_days);
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END
$$;

-- ---------------------------------------------------------------- commands
-- The command ledger: written before a command is acknowledged. The idempotency key is unique
-- per satellite, so a retried submission finds the original. done and failed are final.
CREATE TABLE commands (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    satellite_id     text NOT NULL REFERENCES satellites (id) ON DELETE RESTRICT,
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    args             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(args) = 'object'),
    idempotency_key  text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'done', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    result           jsonb,
    submitted_by     text NOT NULL CHECK (char_length(submitted_by) BETWEEN 1 AND 128),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    finished_at      timestamptz,
    CONSTRAINT commands_idempotency_key_unique UNIQUE (satellite_id, idempotency_key),
    CONSTRAINT commands_finished_iff_final
        CHECK ((status IN ('done', 'failed')) = (finished_at IS NOT NULL)),
    CONSTRAINT commands_sent_has_time CHECK (status <> 'sent' OR sent_at IS NOT NULL),
    CONSTRAINT commands_result_iff_final CHECK ((status IN ('done', 'failed')) = (result IS NOT NULL))
);
CREATE INDEX commands_pending ON commands (created_at) WHERE status IN ('queued', 'sent');
CREATE INDEX commands_satellite_created ON commands (satellite_id, created_at);

-- ---------------------------------------------------------------- ground stations
CREATE TABLE ground_stations (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    lat_deg     double precision NOT NULL CHECK (lat_deg BETWEEN -90 AND 90),
    lon_deg     double precision NOT NULL CHECK (lon_deg BETWEEN -180 AND 180),
    alt_m       double precision NOT NULL DEFAULT 0 CHECK (alt_m BETWEEN -500 AND 9000),
    min_el_deg  double precision NOT NULL DEFAULT 5 CHECK (min_el_deg >= 0 AND min_el_deg < 90),
    downlink_mbps double precision NOT NULL DEFAULT 100 CHECK (downlink_mbps > 0 AND downlink_mbps < 'Infinity'),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- tasks (for the scheduler)
-- A unit of work for a satellite (or for whichever satellite the scheduler picks: NULL), with
-- what it needs and, for a downlink, the window and station it is planned in.
CREATE TABLE tasks (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    satellite_id       text REFERENCES satellites (id) ON DELETE CASCADE,
    kind               text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    args               jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(args) = 'object'),
    priority           smallint NOT NULL DEFAULT 50 CHECK (priority BETWEEN 0 AND 100),  -- 100 = most urgent
    deadline           timestamptz,
    energy_pct         double precision NOT NULL DEFAULT 0 CHECK (energy_pct BETWEEN 0 AND 100),
    memory_mb          double precision NOT NULL DEFAULT 0 CHECK (memory_mb >= 0 AND memory_mb < 'Infinity'),
    bandwidth_mbps     double precision NOT NULL DEFAULT 0 CHECK (bandwidth_mbps >= 0 AND bandwidth_mbps < 'Infinity'),
    ground_station_id  text REFERENCES ground_stations (id) ON DELETE SET NULL,
    window_start       timestamptz,
    window_end         timestamptz,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'scheduled', 'running', 'done', 'failed', 'cancelled')),
    attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_retries        integer NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 100),
    result             jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_window_complete CHECK ((window_start IS NULL) = (window_end IS NULL)),
    CONSTRAINT tasks_window_ordered CHECK (window_end > window_start),
    CONSTRAINT tasks_attempts_within_retries CHECK (attempts <= max_retries + 1)
);
CREATE INDEX tasks_runnable ON tasks (priority DESC, deadline) WHERE status IN ('pending', 'scheduled');
CREATE INDEX tasks_satellite ON tasks (satellite_id, status);

-- ---------------------------------------------------------------- alarms
-- At most one active (not cleared) alarm of a kind per satellite: raising it again is a no-op.
CREATE TABLE alarms (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    satellite_id  text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    severity      text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message       text NOT NULL DEFAULT '' CHECK (char_length(message) <= 1000),
    raised_at     timestamptz NOT NULL DEFAULT now(),
    cleared_at    timestamptz,
    cleared_by    text,
    CONSTRAINT alarms_cleared_after_raised CHECK (cleared_at >= raised_at),
    CONSTRAINT alarms_cleared_by_iff_cleared CHECK ((cleared_at IS NULL) = (cleared_by IS NULL))
);
CREATE UNIQUE INDEX alarms_one_active ON alarms (satellite_id, kind) WHERE cleared_at IS NULL;
CREATE INDEX alarms_raised ON alarms (raised_at);

-- ---------------------------------------------------------------- audit log
-- Who changed what, appended in the same transaction as the change. Append-only.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 128),
    action     text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$'),
    entity     text NOT NULL CHECK (entity ~ '^[a-z][a-z0-9_]{0,63}$'),
    entity_id  text,
    details    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
