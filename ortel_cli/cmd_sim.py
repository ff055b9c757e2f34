"""``ortel simulate``, ``ortel record``, ``ortel replay``: OR traffic for demos, tests and benchmarks.

simulate has three outputs:
  --out FILE            offline: virtual gateways write a recording on the virtual clock (no broker; same
                        seed => same bytes)
  --connect tcp://H:P   NDJSON device lines to a running edge agent's TCP adapter (one URL per room)
  (default)             in process: one edge agent per room (gateway gw-orN, room OR-N) publishing to MQTT
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

OFFLINE_FAULTS = ("gateway_loss", "duplicate", "reorder", "malformed")

if TYPE_CHECKING:
    from simulators.faults import FaultSpec
    from simulators.plan import Plan
    from simulators.settings import SimSettings


def _settings(**overrides: Any) -> SimSettings:
    from runtime import logs
    from simulators.settings import SimSettings

    settings = SimSettings()
    if overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    logs.configure(level=settings.log_level)
    return settings


def _passwords(settings: SimSettings) -> dict[str, str]:
    """Broker logins from the passwords file (``[broker]`` table), if one is configured."""
    import tomllib

    if settings.passwords_file is None:
        return {}
    with settings.passwords_file.open("rb") as fh:
        return {str(k): str(v) for k, v in tomllib.load(fh).get("broker", {}).items()}


def _broker(settings: SimSettings, host: str | None, port: int | None) -> Any:
    from simulators.mqtt import Broker

    m = settings.mqtt
    password = m.password.get_secret_value() if m.password else _passwords(settings).get(m.username)
    return Broker(host=host or m.host, port=port or m.port, username=m.username, password=password)


def _parse_start(text: str) -> int:
    """Virtual start: epoch seconds or an ISO-8601 time (UTC unless it says otherwise)."""
    try:
        return int(float(text) * 1_000_000)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def _faults(specs: list[str], scenario_faults: tuple[str, ...] = ()) -> list[FaultSpec]:
    from simulators.faults import parse_fault

    return [parse_fault(s) for s in (*scenario_faults, *specs)]


def _build_plan(*, scenario: list[str], rooms: int, cases: int, seed: int, timeline: Path | None,
                gateways: int | None, devices: int, rate: float, duration: float) -> Plan:
    from simulators.load import load_plan
    from simulators.plan import plan_rooms, plan_timeline
    from simulators.scenario import load_scenario
    from simulators.timeline import read_timeline

    if gateways is not None:
        return load_plan(gateways=gateways, devices=devices, rate_hz=rate, duration_s=duration, seed=seed)
    names = [n for s in scenario for n in s.split(",") if n]
    scenarios = [load_scenario(n) for n in names]
    if timeline is not None:
        return plan_timeline(scenarios[0], read_timeline(timeline), rooms=rooms, seed=seed)
    return plan_rooms(scenarios, rooms=rooms, cases=cases, seed=seed)


def _plan_and_faults(*, scenario: list[str], fault: list[str], **kw: Any) -> tuple[Plan, list[FaultSpec]]:
    from simulators.scenario import load_scenario

    plan = _build_plan(scenario=scenario, **kw)
    names = [] if kw.get("gateways") else [n for s in scenario for n in s.split(",") if n]
    return plan, _faults(fault, tuple(f for n in names for f in load_scenario(n).faults))


@contextlib.contextmanager
def _failing_cleanly() -> Iterator[None]:
    """A simulator error (bad file, refused login or message) ends the command with its message, exit 1."""
    from simulators.errors import SimError

    try:
        yield
    except SimError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=False)


def _describe(plan: Plan) -> str:
    parts = []
    for rp in plan.rooms:
        kinds = ",".join(sorted({c.scenario.name for c in rp.cases}))
        parts.append(f"{rp.room.name}({rp.room.gateway_id}): {len(rp.cases)} x {kinds}")
    return "; ".join(parts) + f"; span {plan.span_us / 3.6e9:.2f} h virtual"


# --------------------------------------------------------------------------------------------- simulate


def _offline(plan: Plan, out: Path, *, start_us: int | None, specs: list[FaultSpec], batch_s: float,
             names: list[str]) -> None:
    from simulators.offline import default_origin, write_offline

    origin = start_us if start_us is not None else default_origin(time.time_ns() // 1000, plan.span_us)
    with _progress() as progress:
        task = progress.add_task(f"writing {out.name} (virtual s)", total=round(plan.span_us / 1e6))
        n = write_offline(out, plan, origin_us=origin, specs=specs, batch_s=batch_s,
                          header={"scenarios": names, "rooms": len(plan.rooms)},
                          progress=lambda t: progress.update(task, completed=round((t - origin) / 1e6)))
        progress.update(task, completed=round(plan.span_us / 1e6))
    typer.echo(f"wrote {n} messages to {out}")


async def _stream(plan: Plan, sinks: dict[int, Any], *, origin_us: int, wall_us: int, speed: float | None,
                  specs: list[FaultSpec], sent: list[int], warm_us: int = 0) -> int:
    """Pace the plan into the sinks; ``sent[0]`` counts lines as they go (still right after a Ctrl-C).

    The virtual clock reads ``origin_us + warm_us`` at the start: the first ``warm_us`` of the plan go out at once.
    """
    from simulators.engine import drive, paced
    from simulators.faults import device_faults
    from simulators.generate import plan_lines

    total = plan.span_us
    with _progress() as progress:
        task = progress.add_task("simulating (virtual s)", total=round(total / 1e6))
        lines = plan_lines(plan, origin_us=origin_us, faults=device_faults(specs))

        def tick(t: Any) -> None:
            sent[0] += 1
            if sent[0] % 100 == 1:
                progress.update(task, completed=round((t.at_us - origin_us) / 1e6))

        try:
            n = await drive(paced(lines, origin_us=origin_us + warm_us, speed=speed, wall_us=wall_us), sinks, tick)
            progress.update(task, completed=round(total / 1e6))
            return n
        finally:
            for sink in sinks.values():
                await sink.aclose()


async def _connect(plan: Plan, urls: list[str], **kw: Any) -> int:
    from contextlib import AsyncExitStack

    from simulators.tcp import TcpSink, parse_tcp_url

    if len(urls) != len(plan.rooms):
        raise typer.BadParameter(f"{len(plan.rooms)} room(s) need as many --connect URLs, got {len(urls)}")
    async with AsyncExitStack() as stack:
        sinks = {}
        for rp, url in zip(plan.rooms, urls, strict=True):
            host, port = parse_tcp_url(url)
            sinks[rp.room.index] = await stack.enter_async_context(TcpSink(host, port))
        return await _stream(plan, sinks, **kw)


def _agent_settings(settings: SimSettings, room: Any, speed: float | None) -> Any:
    from edge_agent.settings import AgentSettings
    from edge_agent.settings import MqttSettings as AgentMqtt

    m = settings.mqtt
    password = _passwords(settings).get(room.gateway_id) or m.gateway_password
    # Compressed time: the device clocks run `speed` times faster than the agent's, so a low-rate device's
    # reading looks like a clock step of (period x speed). Scale the jump threshold with the speed.
    jump_threshold_s = 2.0 * speed if speed is not None else 86_400.0
    return AgentSettings(
        gateway_id=room.gateway_id, room=room.name,
        mqtt=AgentMqtt(host=m.host, port=m.port, password=password),
        outbox_path=settings.outbox_dir / f"{room.gateway_id}.sqlite3", exit_when_drained=True,
        clock_jump_threshold_s=max(2.0, jump_threshold_s),
    )


async def _inproc(plan: Plan, settings: SimSettings, **kw: Any) -> int:
    """One edge agent per room in this process, fed through its in-process queue adapter."""
    from edge_agent.adapters.inproc import QueueAdapter
    from edge_agent.service import run_agent
    from simulators.engine import QueueSink, queue_lines

    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()  # set: agents shut down gracefully (what they hold stays in their outboxes)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    queues: dict[int, asyncio.Queue[Any]] = {rp.room.index: asyncio.Queue(maxsize=5000) for rp in plan.rooms}

    async def feed() -> None:
        await _stream(plan, {i: QueueSink(q) for i, q in queues.items()}, **kw)
        with contextlib.suppress(TimeoutError):  # agents stop earlier once ingest acknowledged everything
            await asyncio.wait_for(stop.wait(), settings.drain_timeout_s)
        stop.set()

    async with asyncio.TaskGroup() as tg:
        agents = []
        for rp in plan.rooms:
            adapter = QueueAdapter(queue_lines(queues[rp.room.index]), name="simulator")
            agent = run_agent(_agent_settings(settings, rp.room, kw["speed"]), adapters=[adapter], stop=stop)
            agents.append(tg.create_task(agent, name=f"agent-{rp.room.gateway_id}"))
        feeder = tg.create_task(feed(), name="simulator")
        await asyncio.wait([feeder, *agents], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and not feeder.done():
            feeder.cancel()  # Ctrl-C / SIGTERM: no more lines
        await asyncio.gather(*agents)
        feeder.cancel()  # every agent drained: no need to wait out the drain timeout
    return int(kw["sent"][0])


def _run_simulate(settings: SimSettings, plan: Plan, specs: list[FaultSpec], *, out: Path | None,
                  start_us: int | None, connect: list[str], mqtt_host: str | None, mqtt_port: int | None,
                  speed: float | None, names: list[str], warm_start_us: int = 0) -> None:
    from simulators.engine import anchor

    typer.echo(_describe(plan), err=True)
    if out is not None:
        _offline(plan, out, start_us=start_us, specs=specs, batch_s=settings.batch_s, names=names)
        return
    message_faults = sorted({s.kind for s in specs if s.kind in OFFLINE_FAULTS})
    if message_faults:
        typer.echo(f"warning: {', '.join(message_faults)} act on MQTT messages: they apply to --out recordings "
                   "and `ortel replay --fault`, not to live edge agents", err=True)
    if mqtt_host or mqtt_port:
        given = {"host": mqtt_host, "port": mqtt_port}
        mqtt = settings.mqtt.model_copy(update={k: v for k, v in given.items() if v})
        settings = settings.model_copy(update={"mqtt": mqtt})
    now = time.time_ns() // 1000
    sent = [0]
    kw = {"origin_us": anchor(now, plan.span_us, speed) - warm_start_us, "wall_us": now, "speed": speed, "specs": specs,
          "sent": sent, "warm_us": warm_start_us}
    asyncio.run(_connect(plan, connect, **kw) if connect else _inproc(plan, settings, **kw))
    typer.echo(f"sent {sent[0]} device lines")


def register(app: typer.Typer) -> None:
    _register_simulate(app)
    _register_record(app)
    _register_replay(app)


def _register_simulate(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        *,
        scenario: Annotated[list[str], typer.Option(help="Scenario name or TOML path; repeat or comma-separate "
                                                    "to give rooms different procedures.")] = ["lap-chole"],  # noqa: B006
        rooms: Annotated[int, typer.Option(min=1, help="Operating rooms (one gateway each: gw-orN).")] = 1,
        cases: Annotated[int, typer.Option(min=1, help="Cases per room, separated by turnover.")] = 1,
        seed: Annotated[int | None, typer.Option(help="Seed of every generator [ORTEL_SIM_SEED, 7].")] = None,
        speed: Annotated[float, typer.Option(min=0.001, help="Virtual seconds per wall second.")] = 1.0,
        max_speed: Annotated[bool, typer.Option("--max", help="As fast as possible.")] = False,
        timeline: Annotated[Path | None, typer.Option(help="CSV case_id,phase,start_s,end_s: run these "
                                                      "cases with exactly these phase boundaries.")] = None,
        fault: Annotated[list[str], typer.Option(help="Inject a fault, e.g. drift:device=insufflator or "
                                                 "disconnect:device=esu,at_s=900,duration_s=60.")] = [],  # noqa: B006
        out: Annotated[Path | None, typer.Option(help="Write an offline recording (.jsonl.gz), no broker.")] = None,
        start: Annotated[str | None, typer.Option(help="Offline: virtual start (ISO-8601 or epoch s); "
                                                  "default: ends at 00:00 UTC today.")] = None,
        connect: Annotated[list[str], typer.Option(help="tcp://HOST:PORT of an edge agent's TCP adapter, "
                                                   "one per room.")] = [],  # noqa: B006
        gateways: Annotated[int | None, typer.Option(min=1, help="Load mode: number of gateways.")] = None,
        devices: Annotated[int, typer.Option(min=1, help="Load mode: devices per gateway.")] = 10,
        rate: Annotated[float, typer.Option(min=0.01, help="Load mode: samples/s per device.")] = 10.0,
        duration: Annotated[float, typer.Option(min=1, help="Load mode: seconds of traffic.")] = 60.0,
        warm_start: Annotated[float, typer.Option(min=0, help="Begin this many virtual seconds into the plan: that "
                                                  "history is produced at once, then time runs at --speed.")] = 0.0,
        mqtt_host: Annotated[str | None, typer.Option(help="In process: broker host [ORTEL_SIM_MQTT__HOST].")] = None,
        mqtt_port: Annotated[int | None, typer.Option(help="In process: broker port [ORTEL_SIM_MQTT__PORT].")] = None,
        outbox_dir: Annotated[Path | None, typer.Option(help="In process: the agents' outbox directory "
                                                        "[ORTEL_SIM_OUTBOX_DIR].")] = None,
        passwords: Annotated[Path | None, typer.Option(help="TOML \\[broker] login -> password table "
                                                       "[ORTEL_SIM_PASSWORDS_FILE].")] = None,
        list_all: Annotated[bool, typer.Option("--list", help="List scenarios and device families.")] = False,
    ) -> None:
        """Simulate operating rooms: device lines into edge agents, to a TCP adapter or to a file."""
        from simulators.devices import FAMILIES
        from simulators.scenario import list_scenarios

        if list_all:
            typer.echo("scenarios: " + ", ".join(list_scenarios()))
            typer.echo("device families: " + ", ".join(FAMILIES))
            return
        from simulators.errors import SimError

        settings = _settings(seed=seed, outbox_dir=outbox_dir, passwords_file=passwords)
        try:
            plan, specs = _plan_and_faults(scenario=scenario, rooms=rooms, cases=cases, seed=settings.seed,
                                           timeline=timeline, gateways=gateways, devices=devices, rate=rate,
                                           duration=duration, fault=fault)
            start_us = _parse_start(start) if start else None
        except (SimError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        _run_simulate(settings, plan, specs, out=out, start_us=start_us, connect=connect, mqtt_host=mqtt_host,
                      mqtt_port=mqtt_port, speed=None if max_speed else speed, names=scenario,
                      warm_start_us=round(warm_start * 1e6))


def _register_record(app: typer.Typer) -> None:
    @app.command("record")
    def record_cmd(
        *,
        file: Annotated[Path, typer.Argument(help="Output recording (.jsonl.gz).")],
        topic: Annotated[str, typer.Option(help="Topic filter.")] = "ortel/#",
        duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
        count: Annotated[int | None, typer.Option(help="Stop after this many messages.")] = None,
        include_acks: Annotated[bool, typer.Option(help="Also record ingest's watermarks.")] = False,
        include_retained: Annotated[bool, typer.Option(help="Also record messages retained before start.")] = False,
        mqtt_host: Annotated[str | None, typer.Option(help="Broker host [ORTEL_SIM_MQTT__HOST].")] = None,
        mqtt_port: Annotated[int | None, typer.Option(help="Broker port [ORTEL_SIM_MQTT__PORT].")] = None,
        passwords: Annotated[Path | None, typer.Option(help="TOML \\[broker] login -> password table.")] = None,
    ) -> None:
        """Capture MQTT traffic (topic, payload, QoS, retain, arrival time) until Ctrl-C / SIGTERM."""
        from simulators.record import record

        settings = _settings(passwords_file=passwords)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with _failing_cleanly(), _progress() as progress:
            task = progress.add_task(f"recording {topic}", total=count)
            stats = record(file, broker=_broker(settings, mqtt_host, mqtt_port), stop=stop, topic=topic,
                           include_acks=include_acks, include_retained=include_retained, max_messages=count,
                           duration_s=duration, ready=lambda: typer.echo("recording", err=True),
                           progress=lambda n: progress.update(task, completed=n))
        typer.echo(f"recorded {stats.messages} messages in {stats.seconds:.1f}s to {file}")


def _register_replay(app: typer.Typer) -> None:
    @app.command("replay")
    def replay_cmd(
        *,
        file: Annotated[Path, typer.Argument(help="A recording (.jsonl.gz) from record or simulate --out.")],
        speed: Annotated[float, typer.Option(min=0.001, help="Replay speed factor.")] = 1.0,
        max_speed: Annotated[bool, typer.Option("--max", help="As fast as the broker acknowledges.")] = False,
        fault: Annotated[list[str], typer.Option(help="Message faults: duplicate, reorder, malformed "
                                                 "(amount = probability).")] = [],  # noqa: B006
        seed: Annotated[int | None, typer.Option(help="Seed of the message faults.")] = None,
        mqtt_host: Annotated[str | None, typer.Option(help="Broker host [ORTEL_SIM_MQTT__HOST].")] = None,
        mqtt_port: Annotated[int | None, typer.Option(help="Broker port [ORTEL_SIM_MQTT__PORT].")] = None,
        passwords: Annotated[Path | None, typer.Option(help="TOML \\[broker] login -> password table.")] = None,
    ) -> None:
        """Republish a recording with its original relative timing (deterministic order)."""
        from simulators.replay import count_records, replay

        settings = _settings(seed=seed, passwords_file=passwords)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with _failing_cleanly():
            total = count_records(file)
        with _failing_cleanly(), _progress() as progress:
            task = progress.add_task(f"replaying {file.name}", total=total)
            stats = replay(file, broker=_broker(settings, mqtt_host, mqtt_port), speed=None if max_speed else speed,
                           faults=_faults(fault), seed=settings.seed, stop=stop,
                           progress=lambda n: progress.update(task, completed=n))
        typer.echo(f"replayed {stats.messages} messages in {stats.seconds:.1f}s")
