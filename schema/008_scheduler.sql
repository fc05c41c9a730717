-- dualwrite 008: the background jobs' executions and locks (src/domain/scheduler.ts,
-- src/postgres/postgres-task-scheduler-store.ts). Each run of the verifier, of an outbox
-- replay round that did work, and of the retention job is a row of task_executions; the lock
-- it ran under is a row of task_locks. At most one lock per key is active (a partial unique
-- index); its token fences the writes of a holder that lost it.
CREATE TABLE task_executions (
    id BIGSERIAL PRIMARY KEY,
    execution_uid VARCHAR(255) NOT NULL UNIQUE,
    task_name VARCHAR(255) NOT NULL,
    task_type VARCHAR(255) NOT NULL,
    run_by VARCHAR(255) NOT NULL,
    trigger_type VARCHAR(32) NOT NULL CHECK (trigger_type IN ('scheduled', 'manual')),
    trigger_by VARCHAR(255),
    scheduled_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    state VARCHAR(32) NOT NULL CHECK (state IN ('pending', 'running', 'success', 'failure', 'timeout', 'cancelled', 'interrupted')),
    result TEXT,
    result_truncated BOOLEAN NOT NULL DEFAULT false,
    error_message TEXT,
    error_stack TEXT,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    retry_count INTEGER NOT NULL DEFAULT 0,
    lock_key VARCHAR(255),
    lock_token VARCHAR(255),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at),
    -- 64 KB of UTF-8 at most: longer results are cut before they are written.
    CHECK (result IS NULL OR octet_length(result) <= 65536)
);

CREATE INDEX idx_task_executions_task_name ON task_executions(task_name);
CREATE INDEX idx_task_executions_state ON task_executions(state);
CREATE INDEX idx_task_executions_started_at ON task_executions(started_at DESC);
CREATE INDEX idx_task_executions_composite ON task_executions(task_name, state, started_at DESC);
CREATE INDEX idx_task_executions_lock_token ON task_executions(lock_token) WHERE state = 'running';

CREATE TABLE task_locks (
    id BIGSERIAL PRIMARY KEY,
    lock_key VARCHAR(255) NOT NULL,
    holder_id VARCHAR(255) NOT NULL,
    token VARCHAR(255) NOT NULL UNIQUE,
    state VARCHAR(32) NOT NULL CHECK (state IN ('active', 'released', 'expired')),
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    released_at TIMESTAMPTZ,
    purpose VARCHAR(255),
    CHECK (expires_at > acquired_at),
    CHECK (state <> 'released' OR released_at >= acquired_at)
);

-- One active lock per key; released and expired rows stay as history until the retention job.
CREATE UNIQUE INDEX idx_task_locks_key ON task_locks(lock_key) WHERE state = 'active';
CREATE INDEX idx_task_locks_state ON task_locks(state);
CREATE INDEX idx_task_locks_expires_at ON task_locks(expires_at);
CREATE INDEX idx_task_locks_holder ON task_locks(holder_id);
