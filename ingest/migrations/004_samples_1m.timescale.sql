-- ortel:no-transaction
-- TimescaleDB: samples_1m as a continuous aggregate, same columns as the plain materialized view
-- (device_id, metric, bucket, n, min_value, max_value, avg_value).
-- CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous) ... WITH DATA cannot run inside a transaction
-- block (it materialises in transactions of its own), hence the marker above: migrate.py runs each statement
-- of this file on its own, and every statement is idempotent so a rerun after a partial failure is safe.
-- WITH DATA materialises rows migrated from plain PostgreSQL; the policy keeps the recent window fresh.
--
-- Who runs what: the migration owner creates the aggregate and its policy (the policy job runs as the owner);
-- ortel_reader (dashboard) selects from it; ingest does not refresh it on TimescaleDB.

-- materialized_only: the dashboard reads the raw samples past the newest bucket itself (dashboard/db.py), the
-- default since 2.13, pinned so every version behaves alike.
CREATE MATERIALIZED VIEW IF NOT EXISTS samples_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT device_id,
       metric,
       time_bucket(INTERVAL '1 minute', ts) AS bucket,
       count(*)                             AS n,
       min(value)                           AS min_value,
       max(value)                           AS max_value,
       avg(value)                           AS avg_value
FROM samples
GROUP BY device_id, metric, time_bucket(INTERVAL '1 minute', ts)
WITH DATA;

-- The refresh window reaches back as far as ingest accepts late data (max_past_s, 30 days by default): an
-- outbox replayed after a long outage is materialised too. A refresh recomputes only the invalidated ranges.
SELECT add_continuous_aggregate_policy('samples_1m',
    start_offset => INTERVAL '31 days',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute',
    if_not_exists => TRUE);

GRANT SELECT ON samples_1m TO ortel_reader, ortel_writer;
