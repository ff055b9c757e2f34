-- TimescaleDB: samples and events become hypertables with compression and retention policies.
-- Runs as the migration owner (tables are owned by it; policies run as the owner's background jobs).
-- ortel_writer and ortel_reader keep the grants of 002: privileges on a hypertable apply to its chunks.
--
-- Every unique index on a hypertable must include the time column: samples (device_id, metric, ts) and
-- events (device_id, seq, ts) do. migrate_data moves rows of an install that started on plain PostgreSQL.

SELECT create_hypertable('samples', 'ts', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('events', 'ts', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE, migrate_data => TRUE);

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
-- compressed chunks: INSERT ... ON CONFLICT DO NOTHING works on them (TimescaleDB >= 2.11).
SELECT add_compression_policy('samples', compress_after => INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_compression_policy('events', compress_after => INTERVAL '30 days', if_not_exists => TRUE);

SELECT add_retention_policy('samples', drop_after => INTERVAL '400 days', if_not_exists => TRUE);
SELECT add_retention_policy('events', drop_after => INTERVAL '800 days', if_not_exists => TRUE);
