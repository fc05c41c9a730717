-- dualwrite 007: the dispatch app's tables (schema/sqlite/dispatch.sql), translated one to
-- one for PostgreSQL: TEXT dates are TIMESTAMPTZ, INTEGER PRIMARY KEY AUTOINCREMENT is
-- SERIAL PRIMARY KEY, the JSON text columns (depends_on, modifies) are JSONB, REAL is
-- DOUBLE PRECISION, and the epoch columns (lease_expires_at, updated_at) are BIGINT, as
-- SQLite's INTEGER holds 64 bits. Text key columns use COLLATE "C": keys then order by code
-- point, as SQLite's BINARY collation orders them and as dualwrite compares key ranges.
-- `dualwrite migrate-sqlite --from dispatch.db` copies a dispatch database into them.
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT COLLATE "C" PRIMARY KEY,
    project TEXT NOT NULL,
    spec_file TEXT NOT NULL,
    spec_hash TEXT,
    status TEXT DEFAULT 'pending' CHECK(status IN ('pending','claimed','running','completed','failed','deadletter')),
    node TEXT,
    pid INTEGER,
    attempt INTEGER DEFAULT 0,
    max_retries INTEGER DEFAULT 10,
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    collected_at TIMESTAMPTZ,
    heartbeat_at TIMESTAMPTZ,
    error TEXT,
    log_file TEXT,
    duration_seconds DOUBLE PRECISION,
    depends_on JSONB DEFAULT '[]',
    modifies JSONB DEFAULT '[]',
    exclusive INTEGER DEFAULT 0,
    priority INTEGER DEFAULT 2,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    visibility_timeout INTEGER DEFAULT 300,
    idempotency_key TEXT,
    updated_at BIGINT,
    estimated_minutes INTEGER DEFAULT 30,
    artifact_hash TEXT,
    artifact_patch TEXT,
    loc_added INTEGER DEFAULT 0,
    loc_removed INTEGER DEFAULT 0,
    files_changed INTEGER DEFAULT 0,
    peer_validated TEXT DEFAULT 'pending',
    peer_node TEXT,
    peer_result TEXT
);

CREATE TABLE IF NOT EXISTS file_locks (
    file_path TEXT COLLATE "C" NOT NULL,
    task_id TEXT COLLATE "C" NOT NULL,
    locked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (file_path, task_id)
);

CREATE TABLE IF NOT EXISTS nodes (
    name TEXT COLLATE "C" PRIMARY KEY,
    ssh_host TEXT,
    slots INTEGER DEFAULT 8,
    api_mode TEXT DEFAULT 'direct',
    work_dir TEXT DEFAULT '~/dispatch',
    running_count INTEGER DEFAULT 0,
    last_seen TIMESTAMPTZ,
    enabled INTEGER DEFAULT 1
);

CREATE TABLE IF NOT EXISTS events (
    id SERIAL PRIMARY KEY,
    timestamp TIMESTAMPTZ NOT NULL,
    task_id TEXT,
    event_type TEXT,
    node TEXT,
    details TEXT
);

CREATE TABLE IF NOT EXISTS node_reputation (
    node TEXT COLLATE "C" PRIMARY KEY,
    score INTEGER DEFAULT 100,
    total_tasks INTEGER DEFAULT 0,
    passed_validations INTEGER DEFAULT 0,
    failed_validations INTEGER DEFAULT 0,
    fake_successes INTEGER DEFAULT 0,
    last_updated TIMESTAMPTZ,
    quarantined INTEGER DEFAULT 0,
    quarantine_reason TEXT,
    quarantine_at TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS peer_validations (
    id SERIAL PRIMARY KEY,
    task_id TEXT NOT NULL,
    project TEXT NOT NULL,
    executor_node TEXT NOT NULL,
    validator_node TEXT,
    status TEXT DEFAULT 'pending',
    result TEXT,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    completed_at TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS idx_tasks_status ON tasks(status);
CREATE INDEX IF NOT EXISTS idx_tasks_project ON tasks(project);
CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events(timestamp);
CREATE INDEX IF NOT EXISTS idx_tasks_lease ON tasks(lease_expires_at) WHERE status = 'claimed';
