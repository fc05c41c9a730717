-- The dispatch database as the dispatch app creates it (SQLite): the old side of the
-- dispatch migration. schema/007_dispatch.sql is its PostgreSQL translation, column for
-- column; test/sqlite/schema-equivalence.test.ts compares the two catalogs.
-- Dates are TEXT (ISO-8601 or SQLite's "YYYY-MM-DD HH:MM:SS", UTC when no zone is given);
-- depends_on and modifies hold JSON text.
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    spec_file TEXT NOT NULL,
    spec_hash TEXT,
    status TEXT DEFAULT 'pending' CHECK(status IN ('pending','claimed','running','completed','failed','deadletter')),
    node TEXT,
    pid INTEGER,
    attempt INTEGER DEFAULT 0,
    max_retries INTEGER DEFAULT 10,
    started_at TEXT,
    completed_at TEXT,
    collected_at TEXT,
    heartbeat_at TEXT,
    error TEXT,
    log_file TEXT,
    duration_seconds REAL,
    depends_on TEXT DEFAULT '[]',
    modifies TEXT DEFAULT '[]',
    exclusive INTEGER DEFAULT 0,
    priority INTEGER DEFAULT 2,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    visibility_timeout INTEGER DEFAULT 300,
    idempotency_key TEXT,
    updated_at INTEGER,
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
    file_path TEXT NOT NULL,
    task_id TEXT NOT NULL,
    locked_at TEXT NOT NULL,
    PRIMARY KEY (file_path, task_id)
);

CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    ssh_host TEXT,
    slots INTEGER DEFAULT 8,
    api_mode TEXT DEFAULT 'direct',
    work_dir TEXT DEFAULT '~/dispatch',
    running_count INTEGER DEFAULT 0,
    last_seen TEXT,
    enabled INTEGER DEFAULT 1
);

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT NOT NULL,
    task_id TEXT,
    event_type TEXT,
    node TEXT,
    details TEXT
);

CREATE TABLE IF NOT EXISTS node_reputation (
    node TEXT PRIMARY KEY,
    score INTEGER DEFAULT 100,
    total_tasks INTEGER DEFAULT 0,
    passed_validations INTEGER DEFAULT 0,
    failed_validations INTEGER DEFAULT 0,
    fake_successes INTEGER DEFAULT 0,
    last_updated TEXT,
    quarantined INTEGER DEFAULT 0,
    quarantine_reason TEXT,
    quarantine_at TEXT
);

CREATE TABLE IF NOT EXISTS peer_validations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    project TEXT NOT NULL,
    executor_node TEXT NOT NULL,
    validator_node TEXT,
    status TEXT DEFAULT 'pending',
    result TEXT,
    created_at TEXT DEFAULT (datetime('now')),
    completed_at TEXT
);

CREATE INDEX IF NOT EXISTS idx_tasks_status ON tasks(status);
CREATE INDEX IF NOT EXISTS idx_tasks_project ON tasks(project);
CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events(timestamp);
CREATE INDEX IF NOT EXISTS idx_tasks_lease ON tasks(lease_expires_at) WHERE status = 'claimed';
