-- dualwrite 009: which side holds every acknowledged write, kept where every process of the
-- deployment sees it (src/postgres/lineage-store.ts). A process reads it at start to know
-- whether the memory it comes back with is complete, and so whether it must rebuild memory
-- from PostgreSQL before it takes a request.
CREATE TABLE dualwrite_lineage (
    name TEXT PRIMARY KEY,
    -- Bumped by every start of a writing process and every change of authority: a memory
    -- snapshot taken at generation G is current only while the lineage is still at G.
    generation BIGINT NOT NULL,
    -- The stage last in force. Every stage but memory-only writes PostgreSQL, so while it is
    -- not memory-only PostgreSQL holds every acknowledged write since postgres_current_since
    -- (directly or through the outbox, which a start replays first).
    stage TEXT NOT NULL,
    postgres_current_since TIMESTAMPTZ,
    -- PostgreSQL also holds every write made before that: no memory-only write is missing
    -- (cleared when memory-only comes into force, set by a resync that verified clean).
    postgres_complete BOOLEAN NOT NULL,
    -- Set when the outbox lost mirror writes toward this side (Redis restarted empty, a
    -- failover, a truncated file): the side may miss acknowledged writes until a verification
    -- after the loss proves the sides equal, which clears it.
    unverified_side TEXT CHECK (unverified_side IN ('memory', 'postgres')),
    unverified_since TIMESTAMPTZ,
    unverified_reason TEXT,
    changed_at TIMESTAMPTZ NOT NULL,
    changed_by TEXT NOT NULL
);

-- Repairs are runs an operator asks for with a reason, and can be undone run by run.
ALTER TABLE dualwrite_repairs ADD COLUMN run_id UUID;
ALTER TABLE dualwrite_repairs ADD COLUMN reason TEXT;
CREATE INDEX idx_dualwrite_repairs_run ON dualwrite_repairs(run_id);
