-- dualwrite: a least-privilege role for the application. Run it as the owner of dualwrite's
-- schema (the role that runs the migrations), after them, with the schema first on the
-- search_path:
--   psql "$OWNER_URL" -v ON_ERROR_STOP=1 -c "SET dualwrite.app_role = 'dualwrite_app'" -f schema/roles/least-privilege.sql
-- then give the role a password (ALTER ROLE dualwrite_app PASSWORD '...') and put it in the
-- application's DATABASE_URL. The role can read and write dualwrite's tables and nothing
-- else: no DDL, no other schema's tables, no TRUNCATE; the audit trail it may only read and
-- append to (its purge runs with the owner's rights).
DO $$
DECLARE
  app_role TEXT := coalesce(nullif(current_setting('dualwrite.app_role', true), ''), 'dualwrite_app');
  schema_name TEXT := current_schema();
  data_tables TEXT[] := ARRAY['projects', 'project_dependencies', 'contributors', 'assets', 'contributions', 'agent_tasks',
                              'graph_jobs', 'graph_job_events',
                              'dualwrite_repairs', 'dualwrite_runtime_lease', 'dualwrite_backfill_progress', 'dualwrite_lineage',
                              'task_executions', 'task_locks'];
  data_table TEXT;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT', app_role);
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, app_role);
  -- pg_trgm's functions and operators live in public.
  EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app_role);
  EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', schema_name, app_role);
  FOREACH data_table IN ARRAY data_tables LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO %I', schema_name, data_table, app_role);
  END LOOP;
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', schema_name, app_role);
  EXECUTE format('GRANT SELECT, INSERT ON %I.dualwrite_audit_events TO %I', schema_name, app_role);
  EXECUTE format('GRANT SELECT ON %I.dualwrite_schema_migrations TO %I', schema_name, app_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION %I.dualwrite_purge_audit_events(INTEGER, UUID, TIMESTAMPTZ, JSONB, TEXT) TO %I', schema_name, app_role);
END
$$;
