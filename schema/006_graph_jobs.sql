-- dualwrite 006: graph jobs (builds and overlays) and their event logs, for the GraphJobStore
-- (src/stores/graph-job-store-definition.ts; opted into, not a built-in store).
-- Planned for a PostgreSQL schema "scheduler"; created here on the search_path like every
-- other dualwrite table, so an installation (or a test) puts them in its own schema with
-- the rest. Names, columns and indexes are the plan's, except where a tenant-isolated
-- store that means the same in memory and in PostgreSQL needs otherwise:
--   * graph_jobs' key is (tenant_id, id), not id alone: a tenant's insert must never fail,
--     or learn anything, because another tenant holds the same id; every lookup names the
--     tenant. tenant_id uses COLLATE "C" so key order is code point order, as in memory.
--   * graph_job_events is keyed (tenant_id, job_id, seq), seq numbering a job's events from
--     1, instead of a BIGSERIAL id: a serial is handed out by PostgreSQL alone, so the
--     in-memory side could never hold the same key. Its job reference includes the tenant.
--   * type and status stay SMALLINT codes, checked: type 0 = build, 1 = overlay; status
--     0 = queued, 1 = running, 2 = completed, 3 = failed, 4 = canceled.
--   * idx_graph_jobs_tenant_created serves listing a tenant's jobs without a status.

CREATE TABLE graph_jobs (
    id UUID NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    type SMALLINT NOT NULL,
    status SMALLINT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    correlation_id TEXT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT graph_jobs_tenant_id_valid CHECK (length(btrim(tenant_id)) > 0 AND length(tenant_id) <= 255),
    CONSTRAINT graph_jobs_type_valid CHECK (type IN (0, 1)),
    CONSTRAINT graph_jobs_status_valid CHECK (status BETWEEN 0 AND 4),
    CONSTRAINT graph_jobs_payload_object CHECK (jsonb_typeof(payload) = 'object')
);

CREATE INDEX idx_graph_jobs_tenant_status ON graph_jobs(tenant_id, status, created_at DESC);
CREATE INDEX idx_graph_jobs_tenant_type_status ON graph_jobs(tenant_id, type, status, created_at DESC);
CREATE INDEX idx_graph_jobs_tenant_created ON graph_jobs(tenant_id, created_at DESC, id);

CREATE TABLE graph_job_events (
    job_id UUID NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    seq INTEGER NOT NULL,
    status SMALLINT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, job_id, seq),
    FOREIGN KEY (tenant_id, job_id) REFERENCES graph_jobs(tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT graph_job_events_seq_positive CHECK (seq >= 1),
    CONSTRAINT graph_job_events_status_valid CHECK (status BETWEEN 0 AND 4),
    CONSTRAINT graph_job_events_payload_object CHECK (jsonb_typeof(payload) = 'object')
);

CREATE INDEX idx_graph_job_events_job ON graph_job_events(job_id, created_at DESC);
