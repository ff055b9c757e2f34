-- Least privilege. Roles are cluster-wide, so they are created only if missing; grants are per database.
--   ortel_writer  ingest: reads and appends telemetry, updates state; cannot create, drop or delete.
--   ortel_reader  dashboard: reads everything; may append to audit_log and acknowledge alarms, nothing else.
-- The migration owner (whoever runs `ortel db migrate`) owns the tables.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ortel_writer') THEN
        CREATE ROLE ortel_writer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ortel_reader') THEN
        CREATE ROLE ortel_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ortel_writer, ortel_reader;

GRANT SELECT, INSERT, UPDATE ON
    gateways, devices, device_firmware, samples, events, alarms, procedures, procedure_phases,
    received, watermarks, seq_gaps, dead_letters
TO ortel_writer;
GRANT USAGE ON SEQUENCE dead_letters_id_seq TO ortel_writer;

GRANT SELECT ON ALL TABLES IN SCHEMA public TO ortel_reader;
GRANT INSERT ON audit_log TO ortel_reader;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO ortel_reader;
GRANT UPDATE (acked_at, acked_by) ON alarms TO ortel_reader;
