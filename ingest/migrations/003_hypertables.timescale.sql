-- TimescaleDB: samples and events become hypertables with compression and retention policies.
-- Runs as the migration owner (tables are owned by it; policies run as the owner's background jobs).
-- ortel_writer and ortel_reader keep the grants of 002: privileges on a hypertable apply to its chunks.
--
-- Every unique index on a hypertable must include the time column: samples (device_id, metric, ts) and
-- events (device_id, seq, ts) do. migrate_data moves rows of an install that started on plain PostgreSQL.

-- An install that started on plain PostgreSQL has samples_1m as a plain materialized view over samples (and
-- its refresh function, which ingest calls only while it exists): drop both, 004 makes the continuous
-- aggregate. A continuous aggregate is not in pg_matviews, so a rerun drops nothing.
DROP FUNCTION IF EXISTS refresh_samples_1m();
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_matviews WHERE schemaname = 'public' AND matviewname = 'samples_1m') THEN
        DROP MATERIALIZED VIEW public.samples_1m;
    END IF;
END
$$;

-- The generalized create_hypertable of TimescaleDB >= 2.13 (by_range), the form its documentation uses.
SELECT create_hypertable('samples', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('events', by_range('ts', INTERVAL '7 days'), if_not_exists => TRUE, migrate_data => TRUE);

-- Compressed chunks are segmented per series (what every dashboard query filters on), newest first.
ALTER TABLE samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id, metric',
    timescaledb.compress_orderby = 'ts DESC'
);
ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'ts DESC, seq'
);
-- Late data (an outbox replay after a long outage, up to the ingest's max_past_s of 30 days) still lands in
-- compressed chunks: INSERT ... ON CONFLICT DO NOTHING works on them since 2.11, but before 2.19 a multi-row
-- INSERT ... SELECT (ingest's staging insert) silently stopped at the first conflict in a compressed chunk
-- (TimescaleDB issue 7672, fixed in 2.19.0). So chunks are compressed automatically only on >= 2.19; on an
-- older server the tables stay uncompressed (a warning says so) until it is upgraded and the two policies
-- below are added by hand (README, "TimescaleDB").
DO $$
DECLARE
    version text := (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb');
BEGIN
    IF string_to_array(split_part(version, '-', 1), '.')::int[] >= ARRAY[2, 19] THEN
        PERFORM add_compression_policy('samples', compress_after => INTERVAL '7 days', if_not_exists => TRUE);
        PERFORM add_compression_policy('events', compress_after => INTERVAL '30 days', if_not_exists => TRUE);
    ELSE
        RAISE WARNING 'TimescaleDB % < 2.19: no compression policy added (late rows inserted into compressed '
                      'chunks could be lost before 2.19); upgrade, then add the policies', version;
    END IF;
END
$$;

SELECT add_retention_policy('samples', drop_after => INTERVAL '400 days', if_not_exists => TRUE);
SELECT add_retention_policy('events', drop_after => INTERVAL '800 days', if_not_exists => TRUE);
