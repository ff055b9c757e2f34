"""Gateway and device state from births, deaths and heartbeats (SQL shell, one function per message kind).

Every write is idempotent and order-tolerant, because births are retained and every ingest process of a
shared group receives them (they are subscribed without ``$share``):
- a gateway state from another boot applies only if it is not older than the current one, so the late Last
  Will of an old agent process never overrides a newer birth; within one boot the last arrival wins;
- a gateway death marks only the gateway offline: the dashboard derives "unknown (gateway down)" for its
  devices from that, instead of N offline rows;
- a device birth never overrides a newer one; a heartbeat never moves ``last_seen`` back.
"""

from __future__ import annotations

import orjson
import psycopg

from ingest.timeconv import ts
from wire import DeviceBirth, DeviceStatus, GatewayState

__all__ = ["apply_birth", "apply_gateway_state", "apply_status"]

_GATEWAY = """
INSERT INTO gateways AS g (gateway_id, room, state, boot_id, agent_version, state_since, last_seen)
VALUES (%(gw)s, %(room)s, %(state)s, %(boot)s, %(version)s, %(ts)s, %(ts)s)
ON CONFLICT (gateway_id) DO UPDATE SET
    state = EXCLUDED.state,
    boot_id = EXCLUDED.boot_id,
    room = COALESCE(EXCLUDED.room, g.room),
    agent_version = COALESCE(EXCLUDED.agent_version, g.agent_version),
    state_since = EXCLUDED.state_since,
    last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen)
WHERE g.boot_id IS NULL OR g.state_since IS NULL OR g.boot_id = EXCLUDED.boot_id
   OR g.state_since <= EXCLUDED.state_since
"""

_DEVICE = """
INSERT INTO devices AS d (device_id, gateway_id, device_type, manufacturer, model, serial, firmware, udi, room,
                          metrics, heartbeat_s, connected, birth_at, last_seen)
VALUES (%(device)s, %(gw)s, %(type)s, %(manufacturer)s, %(model)s, %(serial)s, %(firmware)s, %(udi)s, %(room)s,
        %(metrics)s, %(heartbeat)s, true, %(ts)s, %(ts)s)
ON CONFLICT (device_id) DO UPDATE SET
    gateway_id = EXCLUDED.gateway_id, device_type = EXCLUDED.device_type,
    manufacturer = EXCLUDED.manufacturer, model = EXCLUDED.model, serial = EXCLUDED.serial,
    firmware = EXCLUDED.firmware, udi = EXCLUDED.udi, room = EXCLUDED.room, metrics = EXCLUDED.metrics,
    heartbeat_s = EXCLUDED.heartbeat_s, connected = true, birth_at = EXCLUDED.birth_at,
    last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen)
WHERE d.birth_at IS NULL OR d.birth_at <= EXCLUDED.birth_at
"""


def apply_gateway_state(cur: psycopg.Cursor, msg: GatewayState) -> None:
    cur.execute(
        _GATEWAY,
        {
            "gw": msg.gateway_id,
            "room": msg.room,
            "state": msg.state,
            "boot": msg.boot_id,
            "version": msg.agent_version,
            "ts": ts(msg.ts_us),
        },
    )


def apply_birth(cur: psycopg.Cursor, msg: DeviceBirth) -> None:
    cur.execute("INSERT INTO gateways (gateway_id) VALUES (%s) ON CONFLICT DO NOTHING", (msg.gateway_id,))
    cur.execute(
        _DEVICE,
        {
            "device": msg.device_id,
            "gw": msg.gateway_id,
            "type": msg.device_type,
            "manufacturer": msg.manufacturer,
            "model": msg.model,
            "serial": msg.serial,
            "firmware": msg.firmware,
            "udi": msg.udi,
            "room": msg.room,
            "metrics": orjson.dumps([m.model_dump(mode="json") for m in msg.metrics]).decode(),
            "heartbeat": msg.heartbeat_s,
            "ts": ts(msg.ts_us),
        },
    )
    if msg.firmware:
        cur.execute(
            "INSERT INTO device_firmware (device_id, firmware) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (msg.device_id, msg.firmware),
        )


def apply_status(cur: psycopg.Cursor, msg: DeviceStatus) -> bool:
    """Apply a heartbeat; False when the device is unknown (no birth stored yet)."""
    cur.execute(
        "UPDATE devices SET connected = %s, last_seen = %s"
        " WHERE device_id = %s AND (last_seen IS NULL OR last_seen <= %s)",
        (msg.connected, ts(msg.ts_us), msg.device_id, ts(msg.ts_us)),
    )
    if cur.rowcount:
        return True
    cur.execute("SELECT 1 FROM devices WHERE device_id = %s", (msg.device_id,))
    return cur.fetchone() is not None
