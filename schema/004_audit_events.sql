-- dualwrite 004: the audit trail of the rollout (src/postgres/audit-log.ts), modelled on the
-- scheduler/audit data model's AuditEvent: who moved a stage, forced an advance, ran a
-- verification, repaired, backfilled, replayed or dead-lettered outbox entries, and why.
-- Rows are immutable: UPDATE, DELETE and TRUNCATE are refused by triggers. The one way to
-- remove rows is dualwrite_purge_audit_events(days), which deletes rows older than that many
-- days (at least 1) and records the purge itself.
CREATE TABLE dualwrite_audit_events (
    id UUID PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    action VARCHAR(64) NOT NULL,
    resource_type VARCHAR(64) NOT NULL,
    resource_id TEXT NOT NULL,
    -- {uid, username, type: user | service | anonymous}
    principal JSONB NOT NULL,
    from_value TEXT,
    to_value TEXT,
    reason TEXT,
    request_id VARCHAR(128),
    client_ip VARCHAR(45),
    -- {old_object, new_object, old_object_truncated, new_object_truncated, truncated_fields}
    diff JSONB,
    data JSONB
);

CREATE INDEX idx_dualwrite_audit_events_occurred_at ON dualwrite_audit_events(occurred_at DESC);
CREATE INDEX idx_dualwrite_audit_events_action ON dualwrite_audit_events(action);
CREATE INDEX idx_dualwrite_audit_events_resource_type ON dualwrite_audit_events(resource_type);
CREATE INDEX idx_dualwrite_audit_events_request_id ON dualwrite_audit_events(request_id);
CREATE INDEX idx_dualwrite_audit_events_composite ON dualwrite_audit_events(resource_type, action, occurred_at DESC);

CREATE FUNCTION dualwrite_audit_events_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only the purge function deletes, and only rows older than the cutoff it set.
    IF TG_OP = 'DELETE'
       AND current_setting('dualwrite.audit_purge_before', true) IS NOT NULL
       AND current_setting('dualwrite.audit_purge_before', true) <> ''
       AND OLD.occurred_at < current_setting('dualwrite.audit_purge_before', true)::timestamptz THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'dualwrite_audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER trg_dualwrite_audit_events_immutable
    BEFORE UPDATE OR DELETE ON dualwrite_audit_events
    FOR EACH ROW EXECUTE FUNCTION dualwrite_audit_events_immutable();

CREATE TRIGGER trg_dualwrite_audit_events_no_truncate
    BEFORE TRUNCATE ON dualwrite_audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION dualwrite_audit_events_immutable();

-- Deletes rows older than `days` days and records the purge as event `event_id` (by
-- `principal`, at `at`); returns how many rows went.
CREATE FUNCTION dualwrite_purge_audit_events(days INTEGER, event_id UUID, at TIMESTAMPTZ, principal JSONB, reason TEXT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    cutoff TIMESTAMPTZ;
    removed BIGINT;
BEGIN
    IF days IS NULL OR days < 1 THEN
        RAISE EXCEPTION 'days: the retention purge keeps at least the last day, got %', days USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Never later than now: a purge cannot reach rows younger than `days` by passing a future time.
    cutoff := LEAST(at, now()) - make_interval(days => days);
    PERFORM set_config('dualwrite.audit_purge_before', cutoff::text, true);
    DELETE FROM dualwrite_audit_events WHERE occurred_at < cutoff;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('dualwrite.audit_purge_before', '', true);
    INSERT INTO dualwrite_audit_events (id, occurred_at, action, resource_type, resource_id, principal, reason, data)
    VALUES (event_id, at, 'audit.purge', 'audit', 'dualwrite_audit_events', principal, reason,
            jsonb_build_object('days', days, 'cutoff', cutoff, 'removed', removed));
    RETURN removed;
END;
$$;
