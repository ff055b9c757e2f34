"""An edge agent process fed from a file of device lines (the end-to-end and edge figures start it).

    python -m bench.agent_runner LINES_FILE N_HELLO [RATE_LINES_PER_S]

Settings come from ``ORTEL_AGENT_*`` like ``ortel agent``. The first ``N_HELLO`` lines (the devices' hellos)
are handed over at once so births reach the database before the clock starts; the rest wait for SIGUSR1
(the driver's go signal), then go in as fast as the agent takes them (or paced at ``RATE_LINES_PER_S``) through the
in-process ``QueueAdapter``, as NDJSON bytes the agent parses like a TCP device's. The agent exits once its
outbox is drained (``exit_when_drained``): every record it produced is committed by ingest.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

YIELD_EVERY = 64  # a socket reader would give the loop a turn at least this often


async def _source(lines: list[bytes], n_hello: int, go: asyncio.Event, rate: float | None) -> AsyncIterator[bytes]:
    for line in lines[:n_hello]:
        yield line
    await go.wait()
    t0 = time.monotonic()
    for i, line in enumerate(lines[n_hello:]):
        if rate is not None:
            ahead = t0 + i / rate - time.monotonic()
            if ahead > 0.002:
                await asyncio.sleep(ahead)  # pacing the offered load
        elif i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        yield line


def main() -> None:
    from edge_agent.adapters.inproc import QueueAdapter
    from edge_agent.service import run_agent
    from edge_agent.settings import AgentSettings
    from runtime import logs

    path, n_hello = Path(sys.argv[1]), int(sys.argv[2])
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else None
    lines = path.read_bytes().splitlines(keepends=True)
    settings = AgentSettings()  # type: ignore[call-arg]  # gateway_id etc. from ORTEL_AGENT_*
    logs.configure(level=settings.log_level)

    async def run() -> None:
        stop, go = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, go.set)
        adapter = QueueAdapter(_source(lines, n_hello, go, rate), name="bench")
        await run_agent(settings, adapters=[adapter], stop=stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
