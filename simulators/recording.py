"""The recording format shared by ``ortel record``, ``ortel replay`` and ``ortel simulate --out``.

A gzip-compressed JSON-lines file. The first line is a header ``{"format": "ortel-recording", "version": 1,
...}``; every other line is one MQTT message as the broker delivered it (or, for a simulated recording, as
the virtual gateway would publish it):

    {"payload": "<utf-8 text>", "qos": 1, "retain": false, "t_us": 1763884800000000, "topic": "ortel/v1/..."}

``t_us`` is the arrival time (virtual time for simulated files); replay keeps the relative timing.
A payload that is not UTF-8 is stored base64 as ``payload_b64``. Keys are sorted and the gzip header carries no
time or name, so the same messages make the same bytes.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import orjson

from simulators.errors import RecordingError

__all__ = ["FORMAT", "Record", "RecordingWriter", "decode_record", "encode_record", "read_recording"]

FORMAT = "ortel-recording"
VERSION = 1
WRITE_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    t_us: int
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


def encode_record(rec: Record) -> bytes:
    body: dict[str, Any] = {"t_us": rec.t_us, "topic": rec.topic, "qos": rec.qos, "retain": rec.retain}
    try:
        body["payload"] = rec.payload.decode("utf-8")
    except UnicodeDecodeError:
        body["payload_b64"] = base64.b64encode(rec.payload).decode("ascii")
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS) + b"\n"


def decode_record(line: bytes, *, source: str = "<recording>") -> Record:
    try:
        raw = orjson.loads(line)
        payload = raw["payload"].encode("utf-8") if "payload" in raw else base64.b64decode(raw["payload_b64"])
        return Record(int(raw["t_us"]), str(raw["topic"]), payload, int(raw.get("qos", 1)), bool(raw.get("retain")))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RecordingError(source, f"bad record: {exc}") from None


class RecordingWriter:
    """``with RecordingWriter(path, header={...}) as w: w.write(record)``; closes the gzip stream on exit."""

    def __init__(self, path: str | Path, *, header: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.header = {"format": FORMAT, "version": VERSION, **(header or {})}
        self.count = 0
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self._buf: list[bytes] = []
        self._buffered = 0

    def __enter__(self) -> Self:
        self._raw = open(self.path, "wb")  # closed in __exit__
        # mtime=0 and no file name: the gzip header is the same on every run
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0, filename="")
        self._gz.write(orjson.dumps(self.header, option=orjson.OPT_SORT_KEYS) + b"\n")
        return self

    def write(self, rec: Record) -> None:
        line = encode_record(rec)
        self._buf.append(line)
        self._buffered += len(line)
        self.count += 1
        if self._buffered >= WRITE_CHUNK:
            self._drain()

    def _drain(self) -> None:
        assert self._gz is not None, "use RecordingWriter as a context manager"
        self._gz.write(b"".join(self._buf))  # one compress call per chunk, not per message
        self._buf, self._buffered = [], 0

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def flush(self) -> None:
        if self._gz is not None:
            self._drain()
            self._gz.flush()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if self._gz is not None:
                self._drain()
                self._gz.close()
        finally:
            if self._raw is not None:
                self._raw.close()


def read_recording(path: str | Path) -> tuple[dict[str, Any], Iterator[Record]]:
    """The header and a lazy iterator over the records (the file stays open until it is exhausted)."""
    source = str(path)
    try:
        with gzip.open(path, "rb") as fh:
            header = orjson.loads(fh.readline())
    except FileNotFoundError:
        raise RecordingError(source, "no such file") from None
    except (OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise RecordingError(source, f"not a gzip JSON-lines recording: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(source, "missing ortel-recording header")
    if header.get("version") != VERSION:
        raise RecordingError(source, f"unsupported recording version {header.get('version')!r}")

    def records() -> Iterator[Record]:
        with gzip.open(path, "rb") as fh:
            fh.readline()
            for n, line in enumerate(fh, start=2):
                if line.strip():
                    yield decode_record(line, source=f"{source}:{n}")

    return header, records()
