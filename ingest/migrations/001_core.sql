-- Core schema: identity, state, samples, events, procedures, reliability ledgers.
-- Works on plain PostgreSQL; TimescaleDB specifics live in *.timescale.sql migrations.
-- Every unique key on a time-series table includes its time column (a TimescaleDB requirement).

CREATE TABLE IF NOT EXISTS gateways (
    gateway_id     text PRIMARY KEY,
    room           text,
    state          text NOT NULL DEFAULT 'unknown' CHECK (state IN ('online', 'offline', 'unknown')),
    boot_id        text,
    agent_version  text,
    state_since    timestamptz,
    last_seen      timestamptz
);

CREATE TABLE IF NOT EXISTS devices (
    device_id      text PRIMARY KEY,
    gateway_id     text NOT NULL,
    device_type    text NOT NULL,
    manufacturer   text NOT NULL DEFAULT '',
    model          text NOT NULL DEFAULT '',
    serial         text NOT NULL DEFAULT '',
    firmware       text NOT NULL DEFAULT '',
    udi            text,
    room           text,
    metrics        jsonb NOT NULL DEFAULT '[]',
    heartbeat_s    double precision NOT NULL DEFAULT 10,
    connected      boolean NOT NULL DEFAULT true,
    first_seen     timestamptz NOT NULL DEFAULT now(),
    birth_at       timestamptz,
    last_seen      timestamptz,       -- last message of any kind about the device
    last_sample_at timestamptz        -- device time of its newest sample
);
CREATE INDEX IF NOT EXISTS devices_gateway ON devices (gateway_id);

-- Firmware history: one row per (device, firmware) first seen in a birth.
CREATE TABLE IF NOT EXISTS device_firmware (
    device_id   text NOT NULL,
    firmware    text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, firmware)
);

-- One narrow row per sample. Unique per (device, metric, time): a redelivered batch is a no-op.
CREATE TABLE IF NOT EXISTS samples (
    device_id  text NOT NULL,
    metric     text NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision NOT NULL,
    seq        bigint NOT NULL,
    PRIMARY KEY (device_id, metric, ts)
);

CREATE TABLE IF NOT EXISTS events (
    device_id  text NOT NULL,
    seq        bigint NOT NULL,
    ts         timestamptz NOT NULL,
    kind       text NOT NULL,
    code       text,
    severity   text,
    text       text NOT NULL DEFAULT '',
    case_id    text,
    attrs      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (device_id, seq, ts)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_device_ts ON events (device_id, ts);

-- Alarms as intervals, derived from alarm_raised / alarm_cleared events.
CREATE TABLE IF NOT EXISTS alarms (
    device_id   text NOT NULL,
    code        text NOT NULL,
    severity    text NOT NULL,
    text        text NOT NULL DEFAULT '',
    raised_at   timestamptz NOT NULL,
    cleared_at  timestamptz,
    acked_at    timestamptz,
    acked_by    text,
    PRIMARY KEY (device_id, code, raised_at)
);
CREATE INDEX IF NOT EXISTS alarms_open ON alarms (device_id) WHERE cleared_at IS NULL;

CREATE TABLE IF NOT EXISTS procedures (
    case_id         text PRIMARY KEY,
    gateway_id      text NOT NULL,
    room            text NOT NULL,
    procedure_type  text NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz
);
CREATE INDEX IF NOT EXISTS procedures_room_start ON procedures (room, started_at);

CREATE TABLE IF NOT EXISTS procedure_phases (
    case_id     text NOT NULL,
    phase       text NOT NULL,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    PRIMARY KEY (case_id, phase, started_at)
);

-- Reliability ledger: every numbered record (telemetry batch, event, procedure event) that ingest has
-- handled, by stream. status: stored | rejected (dead-lettered for good) | dropped (the edge dropped it).
CREATE TABLE IF NOT EXISTS received (
    gateway_id   text NOT NULL,
    stream       text NOT NULL,
    seq          bigint NOT NULL,
    kind         text NOT NULL,
    status       text NOT NULL DEFAULT 'stored',
    n_samples    integer NOT NULL DEFAULT 0,
    replay       boolean NOT NULL DEFAULT false,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, stream, seq)
);

-- Highest seq per stream below which everything is accounted for (published as the retained watermark).
CREATE TABLE IF NOT EXISTS watermarks (
    gateway_id  text NOT NULL,
    stream      text NOT NULL,
    seq         bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, stream)
);

-- Sequence gaps: [from_seq, to_seq] missing after a later seq arrived; closed when filled.
CREATE TABLE IF NOT EXISTS seq_gaps (
    gateway_id   text NOT NULL,
    stream       text NOT NULL,
    from_seq     bigint NOT NULL,
    to_seq       bigint NOT NULL,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    reason       text NOT NULL DEFAULT 'missing',
    PRIMARY KEY (gateway_id, stream, from_seq)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    gateway_id   text,
    device_id    text
);
CREATE INDEX IF NOT EXISTS dead_letters_time ON dead_letters (received_at);

-- Audit trail of people's actions (logins, alarm acknowledgements); append-only for the dashboard role.
CREATE TABLE IF NOT EXISTS audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}'
);
