-- 0009: limits as data and the alarm lifecycle (issue 18).
--
-- limits: one row per parameter, fleet-wide (satellite_id NULL) or for one satellite (which then
-- overrides the fleet's). A value is in limits when low <= value < high (a missing bound is
-- open); warning and critical are two such ranges, the critical one the wider. hysteresis: how
-- far back inside a range a value must come to leave it (same unit as the parameter).
-- persistence: how many samples in a row must be out of limits before an alarm is raised.
-- latched: an alarm whose value came back stays until acknowledged. Relations between the
-- bounds are checked by py_nodes/db/limits.py with field names; the CHECKs are the backstop.
CREATE TABLE limits (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parameter      text NOT NULL CHECK (parameter IN ('energy_pct', 'memory_used_pct', 'memory_used_mb', 'alt_km')),
    satellite_id   text REFERENCES satellites (id) ON DELETE CASCADE,
    warning_low    double precision CHECK (warning_low > '-Infinity' AND warning_low < 'Infinity'),
    warning_high   double precision CHECK (warning_high > '-Infinity' AND warning_high < 'Infinity'),
    critical_low   double precision CHECK (critical_low > '-Infinity' AND critical_low < 'Infinity'),
    critical_high  double precision CHECK (critical_high > '-Infinity' AND critical_high < 'Infinity'),
    hysteresis     double precision NOT NULL DEFAULT 0 CHECK (hysteresis >= 0 AND hysteresis < 'Infinity'),
    persistence    integer NOT NULL DEFAULT 1 CHECK (persistence BETWEEN 1 AND 3600),
    latched        boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text NOT NULL CHECK (char_length(updated_by) BETWEEN 1 AND 128),
    CONSTRAINT limits_some_bound CHECK (num_nonnulls(warning_low, warning_high, critical_low, critical_high) > 0),
    CONSTRAINT limits_warning_ordered CHECK (warning_low < warning_high),
    CONSTRAINT limits_critical_ordered CHECK (critical_low < critical_high),
    CONSTRAINT limits_low_ordered CHECK (critical_low <= warning_low),
    CONSTRAINT limits_high_ordered CHECK (warning_high <= critical_high)
);
-- One fleet-wide row and one row per satellite for each parameter.
CREATE UNIQUE INDEX limits_one_per_scope ON limits (parameter, coalesce(satellite_id, ''));

-- Today's hard-coded limits (satellite/model.py before 0009), so nothing changes out of the box:
-- low_energy (critical) below 10 %, memory_full (warning) at capacity. Latched: as before, the
-- alarm stays until an operator acknowledges it.
INSERT INTO limits (parameter, critical_low, hysteresis, persistence, latched, updated_by)
    VALUES ('energy_pct', 10, 1, 1, true, 'migration 0009');
INSERT INTO limits (parameter, warning_high, hysteresis, persistence, latched, updated_by)
    VALUES ('memory_used_pct', 100, 1, 1, true, 'migration 0009');

-- alarms: the lifecycle. state: unacknowledged -> acknowledged | shelved -> cleared (final).
-- active: whether the condition is still out of limits (an unacknowledged alarm whose condition
-- returned is waiting for its acknowledgement). An alarm raised before 0009 keeps its meaning:
-- open ones are unacknowledged and active, cleared ones cleared.
ALTER TABLE alarms
    ADD COLUMN state text NOT NULL DEFAULT 'unacknowledged'
        CHECK (state IN ('unacknowledged', 'acknowledged', 'shelved', 'cleared')),
    ADD COLUMN active boolean NOT NULL DEFAULT true,
    ADD COLUMN latched boolean NOT NULL DEFAULT false,
    ADD COLUMN value double precision,
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by text CHECK (char_length(acknowledged_by) BETWEEN 1 AND 128),
    ADD COLUMN comment text CHECK (char_length(comment) <= 1000),
    ADD COLUMN shelved_until timestamptz,
    ADD COLUMN shelved_by text CHECK (char_length(shelved_by) BETWEEN 1 AND 128),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
UPDATE alarms SET state = 'cleared', active = false WHERE cleared_at IS NOT NULL;
ALTER TABLE alarms
    ADD CONSTRAINT alarms_cleared_iff_state CHECK ((state = 'cleared') = (cleared_at IS NOT NULL)),
    ADD CONSTRAINT alarms_shelved_has_until CHECK ((state = 'shelved') = (shelved_until IS NOT NULL));
CREATE INDEX alarms_shelf ON alarms (shelved_until) WHERE state = 'shelved';

-- Every transition of every alarm, in order (append-only, like the audit log).
CREATE TABLE alarm_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alarm_id    bigint NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    transition  text NOT NULL CHECK (transition IN
                    ('raised', 'escalated', 'returned', 'acknowledged', 'shelved', 'unshelved', 'cleared')),
    state       text NOT NULL CHECK (state IN ('unacknowledged', 'acknowledged', 'shelved', 'cleared')),
    severity    text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    active      boolean NOT NULL,
    actor       text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 128),
    comment     text NOT NULL DEFAULT '' CHECK (char_length(comment) <= 1000),
    value       double precision
);
CREATE INDEX alarm_transitions_alarm ON alarm_transitions (alarm_id, id);
INSERT INTO alarm_transitions (alarm_id, at, transition, state, severity, active, actor, comment)
    SELECT id, raised_at, 'raised', 'unacknowledged', severity, true, 'system', message FROM alarms;
INSERT INTO alarm_transitions (alarm_id, at, transition, state, severity, active, actor)
    SELECT id, cleared_at, 'cleared', 'cleared', severity, false, cleared_by FROM alarms WHERE cleared_at IS NOT NULL;
