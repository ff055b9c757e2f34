"""ortel ingest: MQTT (paho, manual ack, persistent session) into PostgreSQL / TimescaleDB, exactly once.

Pure core (no paho, no psycopg):  batcher.py (when to commit) · classify.py (message -> Accepted | DeadLetter)
                                  rows.py (binary COPY shaping, limits) · ledger.py (watermark, gaps)
I/O shell:                        subscriber.py (paho) · writer.py (one batch, one transaction, fallback)
                                  records.py · status.py · watermarks.py (SQL) · service.py (wiring, /metrics)
Schema:                           migrations/NNN_*.sql applied by migrate.py (``ortel db migrate``)

Entry point: ``ingest.service.run_ingest(IngestSettings(), stop=threading.Event())`` (synchronous), or
``ortel ingest`` with ``ORTEL_INGEST_*`` variables.
"""
