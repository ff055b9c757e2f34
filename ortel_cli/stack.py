"""A private Mosquitto and PostgreSQL on free loopback ports in a directory of their own.

Used by ``ortel demo``, by the test harness and by the benchmarks, so all three run exactly the same servers.
Nothing here touches a broker or database the machine already runs: ports are picked free (or given), data
lives under the directory passed in, and ``stop()`` leaves nothing running.

pg_ctl refuses to run as root, and Mosquitto started as root drops to its own user: when we are root the
directories are handed to those users and PostgreSQL's tools run through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Database",
    "MissingBinary",
    "MosquittoServer",
    "PostgresServer",
    "free_port",
    "render_mosquitto_conf",
    "wait_for_port",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


class MissingBinary(RuntimeError):
    def __init__(self, binary: str, hint: str) -> None:
        super().__init__(f"{binary} not found. Install it with: {hint}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


def _is_root() -> bool:
    return os.geteuid() == 0


def _give_to(path: Path, user: str) -> None:
    """Hand a directory tree to ``user`` when we run as root (and the user exists)."""
    if not _is_root():
        return
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
    # every parent must be traversable by that user
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            with contextlib.suppress(PermissionError):
                os.chmod(parent, mode | 0o011)


# --------------------------------------------------------------------------------------------- Mosquitto

_PATH_KEYS = ("password_file", "acl_file", "cafile", "certfile", "keyfile", "persistence_location", "crlfile")
_PLAIN_PORT, _TLS_PORT = "1883", "8883"


def render_mosquitto_conf(template: str, *, directory: Path, port: int, tls_port: int | None) -> str:
    """Adapt the repo's mosquitto.conf to a private run: our ports, our files, logs to a file.

    The plain listener (template port 1883) moves to ``port`` on loopback; the TLS listener (8883) moves to
    ``tls_port`` or is dropped together with its options when ``tls_port`` is None. Any other listener (1884,
    compose's internal network) is dropped: a private run has no such network. A dropped block extends to the
    next ``listener`` line, which is why mosquitto.conf keeps its listener blocks at the end.
    """
    out: list[str] = []
    dropping = False
    for line in template.splitlines():
        stripped = line.strip()
        key = stripped.split(" ", 1)[0] if stripped and not stripped.startswith("#") else ""
        if key == "listener":
            parts = stripped.split()
            template_port = parts[1] if len(parts) > 1 else ""
            dropping = False
            if template_port == _PLAIN_PORT:
                out.append(f"listener {port} 127.0.0.1")
            elif template_port == _TLS_PORT and tls_port is not None:
                out.append(f"listener {tls_port} 127.0.0.1")
            else:
                dropping = True
            continue
        if dropping and key and key not in {"per_listener_settings"}:
            continue
        if key in _PATH_KEYS:
            name = Path(stripped.split(None, 1)[1]).name
            target = directory / ("data/" if key == "persistence_location" else name)
            out.append(f"{key} {target}{'/' if key == 'persistence_location' else ''}")
            continue
        if key in {"log_dest", "pid_file"}:
            continue
        out.append(line)
    out.append(f"log_dest file {directory / 'mosquitto.log'}")
    return "\n".join(out) + "\n"


@dataclass
class MosquittoServer:
    """``mosquitto -c`` on a free port, with the repo's config, password file and ACL."""

    directory: Path
    port: int = 0
    tls_port: int | None = None
    conf_template: Path = REPO_ROOT / "mosquitto.conf"
    acl_template: Path = REPO_ROOT / "mosquitto.acl"
    gateway_acl_template: Path = REPO_ROOT / "mosquitto.gateways.acl"  # the TLS listener's ACL
    users: dict[str, str] = field(default_factory=dict)
    # Files the TLS listener needs, by the name mosquitto.conf gives them (ca.crt, broker.crt, broker.key):
    # ``ortel_cli.pki.Pki.broker_files()``. Copied next to the config when it is written.
    tls_files: dict[str, Path] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            raise MissingBinary("mosquitto", "apt-get install -y mosquitto mosquitto-clients")
        self.passwd_tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        if not Path(self.passwd_tool).exists():
            raise MissingBinary("mosquitto_passwd", "apt-get install -y mosquitto")
        self.port = self.port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "data").mkdir(exist_ok=True)

    @property
    def conf_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def passwd_path(self) -> Path:
        return self.directory / "passwd"

    def write_config(self) -> None:
        text = render_mosquitto_conf(
            self.conf_template.read_text(), directory=self.directory, port=self.port, tls_port=self.tls_port
        )
        self.conf_path.write_text(text)
        shutil.copyfile(self.acl_template, self.directory / "acl")
        shutil.copyfile(self.gateway_acl_template, self.directory / "acl-gateways")
        for name, source in self.tls_files.items():
            shutil.copyfile(source, self.directory / name)
            os.chmod(self.directory / name, 0o600 if name.endswith(".key") else 0o644)
        self.passwd_path.touch()
        for user, password in self.users.items():
            self._passwd(user, password)

    def _passwd(self, user: str, password: str) -> None:
        subprocess.run([self.passwd_tool, "-b", str(self.passwd_path), user, password], check=True,
                       capture_output=True)
        os.chmod(self.passwd_path, 0o600)

    def add_user(self, user: str, password: str) -> None:
        """Add or change a user on the running broker (SIGHUP reloads the password file)."""
        self.users[user] = password
        self._passwd(user, password)
        _give_to(self.directory, "mosquitto")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def start(self) -> MosquittoServer:
        if not self.conf_path.exists():
            self.write_config()
        _give_to(self.directory, "mosquitto")
        log = open(self.directory / "stdout.log", "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdout=log, stderr=log)
        try:
            wait_for_port(self.port, proc=self.proc)
            if self.tls_port:
                wait_for_port(self.tls_port, proc=self.proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"mosquitto did not start: {exc}\n{self.log_tail()}") from exc
        return self

    def log_tail(self, n: int = 30) -> str:
        lines: list[str] = []
        for name in ("mosquitto.log", "stdout.log"):
            path = self.directory / name
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker loses whatever it held in memory since its last autosave."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# --------------------------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path:
    with contextlib.suppress(FileNotFoundError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
        if (Path(out) / "pg_ctl").exists():
            return Path(out)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(re.sub(r"\D", "", p) or 0))
    for cand in reversed(candidates):
        if (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise MissingBinary("pg_ctl/initdb", "apt-get install -y postgresql")


def timescaledb_installed(bindir: Path) -> bool:
    """True when the server's library directory holds the timescaledb extension."""
    pg_config = bindir / "pg_config"
    libdir = None
    with contextlib.suppress(FileNotFoundError, subprocess.CalledProcessError):
        libdir = subprocess.run([str(pg_config), "--pkglibdir"], check=True, capture_output=True,
                                text=True).stdout.strip()
    if libdir is None:
        version = bindir.parent.name
        libdir = f"/usr/lib/postgresql/{version}/lib"
    return bool(glob.glob(f"{libdir}/timescaledb*.so"))


@dataclass
class PostgresServer:
    """A private cluster: ``initdb`` into ``directory``, ``pg_ctl -w start`` on a free loopback port."""

    directory: Path
    port: int = 0
    superuser: str = "postgres"
    bindir: Path = field(default_factory=_pg_bindir)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.data = self.directory / "data"
        self.socket_dir = self.directory / "run"
        self.timescaledb = timescaledb_installed(self.bindir)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if _is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        _give_to(self.directory, "postgres")
        if (self.data / "PG_VERSION").exists():
            return
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C")
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.socket_dir}'",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "synchronous_commit = on",  # a commit returns after the WAL flush: acks depend on it
            "fsync = on",
            "log_min_messages = warning",
            "timezone = 'UTC'",
        ]
        if self.timescaledb:
            conf += ["shared_preload_libraries = 'timescaledb'", "timescaledb.telemetry_level = off"]
        with open(self.data / "postgresql.auto.conf", "a") as fh:
            fh.write("\n".join(conf) + "\n")

    def start(self) -> PostgresServer:
        self.init()
        res = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "server.log"), "-w",
                        "-t", "60", "-o", f"-p {self.port}", "start", check=False)
        if res.returncode != 0:
            raise RuntimeError(f"postgres did not start:\n{res.stdout}\n{res.stderr}\n{self.log_tail()}")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: no shutdown checkpoint, recovery replays the WAL on start."""
        self.stop("immediate")

    def log_tail(self, n: int = 30) -> str:
        path = self.directory / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user or self.superuser}"

    @contextlib.contextmanager
    def running(self) -> Iterator[PostgresServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def _has_c_utf8() -> bool:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return False
    return any(x.lower() in {"c.utf8", "c.utf-8"} for x in out.split())


@dataclass(frozen=True)
class Database:
    """A migrated database on ``server``; ``dsn()`` connects as the owner, ``dsn(role)`` as that role."""

    server: PostgresServer
    name: str
    variant: str  # "plain" or "timescale"

    def dsn(self, role: str | None = None) -> str:
        return self.server.dsn(self.name, user=role)

    @property
    def writer_dsn(self) -> str:
        return self.dsn("ortel_writer")

    @property
    def reader_dsn(self) -> str:
        return self.dsn("ortel_reader")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def scalar(self, sql: str, params: tuple[object, ...] = ()) -> object:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None
