-- samples_1m on plain PostgreSQL: a materialized view of 1-minute min/max/avg/count per device and metric.
-- The dashboard reads exactly these columns: device_id, metric, bucket, n, min_value, max_value, avg_value
-- (the TimescaleDB variant, 004_samples_1m.timescale.sql, is a continuous aggregate with the same shape).
--
-- Who runs what:
--   migration owner  creates the view, its unique index and refresh_samples_1m() (SECURITY DEFINER: REFRESH
--                    needs ownership of the view, which ortel_writer must not have).
--   ortel_writer     (ingest) calls refresh_samples_1m() every refresh_interval_s.
--   ortel_reader     (dashboard) selects from samples_1m.

CREATE MATERIALIZED VIEW IF NOT EXISTS samples_1m AS
SELECT device_id,
       metric,
       date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       count(*)::bigint                AS n,
       min(value)::double precision    AS min_value,
       max(value)::double precision    AS max_value,
       avg(value)::double precision    AS avg_value
FROM samples
GROUP BY 1, 2, 3
WITH DATA;

-- REFRESH ... CONCURRENTLY needs a unique index on plain columns; it keeps the view readable while refreshing.
CREATE UNIQUE INDEX IF NOT EXISTS samples_1m_key ON samples_1m (device_id, metric, bucket);

CREATE OR REPLACE FUNCTION refresh_samples_1m() RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    -- Several ingest processes share the work: whoever holds the lock refreshes, the others skip.
    IF NOT pg_try_advisory_xact_lock(hashtext('ortel.samples_1m')) THEN
        RETURN false;
    END IF;
    REFRESH MATERIALIZED VIEW CONCURRENTLY public.samples_1m;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION refresh_samples_1m() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION refresh_samples_1m() TO ortel_writer;
GRANT SELECT ON samples_1m TO ortel_reader, ortel_writer;
