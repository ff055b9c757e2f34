"""The ortel edge agent: device lines in, numbered wire records out, nothing forgotten before ingest commits.

    adapters/ (in-process, TCP/MQTT lines, serial) -> pipeline (pure: units, privacy, clock, rules, batches)
    -> outbox (SQLite WAL, fsync'd, seq assigned) -> publisher (aiomqtt, bounded window)
    <- watermarks on ortel/v1/{gw}/ack/+ delete what ingest has committed.
"""
