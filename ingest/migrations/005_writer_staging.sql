-- Ingest stages every batch in temporary tables (COPY into them, then INSERT ... ON CONFLICT DO NOTHING into
-- the real tables), so ortel_writer needs TEMPORARY on this database. PUBLIC has it by default, but a hardened
-- server may have revoked it; grant it explicitly. Run by the migration owner.
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO ortel_writer', current_database());
END
$$;
