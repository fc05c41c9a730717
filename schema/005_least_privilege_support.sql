-- dualwrite 005: what a least-privilege application role (schema/roles/least-privilege.sql)
-- needs the owner to have made: the backfill's checkpoint table exists up front (it was
-- created on first use, which needs CREATE on the schema), and the audit purge runs with
-- its owner's rights, so the application role never holds DELETE on the audit trail.
CREATE TABLE IF NOT EXISTS dualwrite_backfill_progress (
    entity TEXT PRIMARY KEY,
    last_key JSONB,
    copied BIGINT NOT NULL DEFAULT 0,
    completed BOOLEAN NOT NULL DEFAULT false,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER FUNCTION dualwrite_purge_audit_events(INTEGER, UUID, TIMESTAMPTZ, JSONB, TEXT) SECURITY DEFINER;
