"""OR simulators: seeded device models, procedure scenarios, a virtual-clock engine, record and replay.

The simulator talks to ortel only the way a real device or operator tool would: device lines
(``wire.device``) into an edge agent's adapter, or MQTT messages through the broker. It never imports another
component (the CLI composes the edge agent in process).

    devices/<family>.py  seeded signal models: segments in, device lines out          (pure)
    scenarios/*.toml     procedures: phases, durations, which device does what         (data)
    scenario, timeline   loading scenarios and recorded phase timelines               (pure)
    plan, load           which cases run in which room, when each phase starts         (pure)
    generate             a plan -> time-ordered device lines of every room             (pure)
    faults               device, gateway and message faults                            (pure)
    gateway, offline     virtual gateway -> deterministic recording file (no broker)   (pure + file)
    recording            the gzip JSON-lines recording format                          (file)
    engine               virtual clock and pacing, sinks (asyncio shell)
    tcp, mqtt, record, replay   NDJSON over TCP, MQTT record/replay (I/O shell)
"""

from simulators.errors import FaultSpecError, RecordingError, ScenarioError, SimError, TimelineError

__all__ = ["FaultSpecError", "RecordingError", "ScenarioError", "SimError", "TimelineError"]
