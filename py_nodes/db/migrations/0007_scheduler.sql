-- 0007: the mission scheduler (issue 17). Extends 0001's tasks table (its states are kept) with
-- what the planner needs, and records plans: one row per plan run (why it ran, what it found)
-- and each task's current placement. Vocabularies mirror py_nodes/vocabulary.py.
-- tasks.satellite_id / ground_station_id are what the operator asked for (NULL: any); where the
-- plan puts a task is in task_placements. 0001's window_start/window_end stay unused.

ALTER TABLE tasks ADD CONSTRAINT tasks_kind_known
    CHECK (kind IN ('imaging', 'downlink', 'maintenance', 'command'));
ALTER TABLE tasks
    ADD COLUMN earliest_start timestamptz,
    ADD COLUMN duration_s double precision NOT NULL DEFAULT 60
        CHECK (duration_s > 0 AND duration_s <= 86400),
    ADD COLUMN depends_on bigint REFERENCES tasks (id) ON DELETE SET NULL,
    ADD COLUMN submitted_by text NOT NULL DEFAULT 'system' CHECK (char_length(submitted_by) BETWEEN 1 AND 128),
    -- Why the task is not placed, or why it failed or was cancelled (a TASK_REASONS code).
    ADD COLUMN reason text CHECK (reason IN ('window', 'deadline', 'horizon', 'energy', 'memory',
        'station_conflict', 'satellite_busy', 'dependency', 'unknown_satellite', 'unknown_station',
        'satellite_unavailable', 'execution_failed', 'cancelled')),
    ADD COLUMN reason_detail text NOT NULL DEFAULT '' CHECK (char_length(reason_detail) <= 1000),
    ADD COLUMN retry_after timestamptz,   -- after a failed attempt: not placed before this (backoff)
    ADD COLUMN started_at timestamptz,
    ADD COLUMN finished_at timestamptz,
    ADD CONSTRAINT tasks_deadline_after_start CHECK (deadline > earliest_start);
CREATE INDEX tasks_status_updated ON tasks (status, updated_at);

-- ---------------------------------------------------------------- plan runs
-- One per (re-)plan: what triggered it (cause, detail), when, how long the solve took, what it
-- placed. Applied runs change the placements; what-if runs are not stored.
CREATE TABLE plan_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    cause          text NOT NULL CHECK (cause IN ('task_added', 'task_cancelled', 'station_down', 'station_up',
                       'satellite_unavailable', 'execution_failed', 'freeze_passed', 'manual', 'takeover')),
    detail         text NOT NULL DEFAULT '' CHECK (char_length(detail) <= 1000),
    holder         text NOT NULL CHECK (char_length(holder) BETWEEN 1 AND 255),
    horizon_start  timestamptz NOT NULL,
    horizon_end    timestamptz NOT NULL,
    solve_ms       double precision NOT NULL CHECK (solve_ms >= 0),
    placed         integer NOT NULL CHECK (placed >= 0),
    unplaced       integer NOT NULL CHECK (unplaced >= 0),
    moved          integer NOT NULL DEFAULT 0 CHECK (moved >= 0),
    value          double precision NOT NULL DEFAULT 0,
    CONSTRAINT plan_runs_horizon_ordered CHECK (horizon_end > horizon_start)
);
CREATE INDEX plan_runs_at ON plan_runs (at);

-- ---------------------------------------------------------------- placements
-- Where and when each task runs in the current plan (one row per placed task). attempt is the
-- attempt the placement is for: a step's ledger idempotency key is derived from task id and it.
CREATE TABLE task_placements (
    task_id            bigint PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    plan_run_id        bigint NOT NULL REFERENCES plan_runs (id) ON DELETE CASCADE,
    attempt            integer NOT NULL CHECK (attempt >= 1),
    satellite_id       text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    ground_station_id  text REFERENCES ground_stations (id) ON DELETE CASCADE,
    start_at           timestamptz NOT NULL,
    end_at             timestamptz NOT NULL,
    CONSTRAINT task_placements_ordered CHECK (end_at > start_at)
);
CREATE INDEX task_placements_start ON task_placements (start_at);

-- ---------------------------------------------------------------- re-plan requests
-- Asked for by the gateway or the shell (re-plan now, a station taken down or up); the scheduler
-- that holds the lease handles each once (handled_at, plan_run_id).
CREATE TABLE plan_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cause         text NOT NULL CHECK (cause IN ('task_added', 'task_cancelled', 'station_down', 'station_up',
                      'satellite_unavailable', 'execution_failed', 'freeze_passed', 'manual', 'takeover')),
    detail        text NOT NULL DEFAULT '' CHECK (char_length(detail) <= 1000),
    requested_by  text NOT NULL CHECK (char_length(requested_by) BETWEEN 1 AND 128),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    handled_at    timestamptz,
    plan_run_id   bigint REFERENCES plan_runs (id) ON DELETE SET NULL
);
CREATE INDEX plan_requests_open ON plan_requests (id) WHERE handled_at IS NULL;
