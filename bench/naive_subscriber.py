"""The baseline: what a tutorial writes. One INSERT and one commit (autocommit) per sample, in the callback.

    python bench/naive_subscriber.py HOST PORT USER PASSWORD DSN
"""

import sys

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

host, port, user, password, dsn = sys.argv[1:6]
db = psycopg.connect(dsn, autocommit=True)
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive", protocol=MQTTProtocolVersion.MQTTv5)
client.username_pw_set(user, password)


def on_connect(client, userdata, flags, reason_code, properties):
    client.subscribe("ortel/v1/+/dev/+/telemetry", qos=1)


def on_message(client, userdata, msg):
    batch = orjson.loads(msg.payload)
    for metric, values in batch["metrics"].items():
        for ts_us, value in zip(batch["ts_us"], values, strict=True):
            db.execute(
                "INSERT INTO samples (device_id, metric, ts, value, seq)"
                " VALUES (%s, %s, to_timestamp(%s / 1e6), %s, %s)",
                (batch["device_id"], metric, ts_us, value, batch["seq"]),
            )


client.on_connect = on_connect
client.on_message = on_message
client.connect(host, int(port))
client.loop_forever()
