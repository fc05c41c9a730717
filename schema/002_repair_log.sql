-- dualwrite 002: the record of repairs made by the verifier (verifier/repair.ts), one row per
-- attempted repair, including those skipped because a newer write had landed first.
CREATE TABLE dualwrite_repairs (
    id BIGSERIAL PRIMARY KEY,
    repaired_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    store TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_key JSONB NOT NULL,
    difference TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    before JSONB,
    after JSONB
);

CREATE INDEX idx_dualwrite_repairs_at ON dualwrite_repairs(repaired_at DESC);
