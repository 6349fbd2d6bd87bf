"""What a benchmark starts around Leadsmith: its own PostgreSQL database, Redis server and
Celery workers, each ended by the script that started it.

Used by bench/fault_injection.py and bench/spend.py (run as scripts, so `bench/` is first
on sys.path and `import _stack` finds this file). The machine's shared Redis is never
touched: a RedisServer is a `redis-server` on a free port of its own, killed by its pid.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 60.0
# A worker told to stop finishes its task first (a warm shutdown); past this it is killed.
GRACEFUL_STOP_SECONDS = 30.0
# Every provider that could be on besides the sandbox: a benchmark must never call a vendor.
VENDOR_SETTINGS = (
    "HUNTER_API_KEY",
    "PDL_API_KEY",
    "APOLLO_API_KEY",
    "NETROWS_API_KEY",
    "SMTP_VERIFY_FROM",
    "SANDBOX_API_KEY",
)
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of the script's own, on its own port, without persistence."""

    def __init__(self, port: int, logdir: Path) -> None:
        self.port = port
        self.logdir = logdir
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        import redis

        self.starts += 1
        log = (self.logdir / f"redis-{self.starts}.log").open("w")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return self
            except redis.RedisError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"redis-server on port {self.port} did not start (see {log.name})")

    def messages(self, queues: tuple[str, ...] = ("enrichment", "maintenance")) -> tuple[int, int]:
        """Return (queued, unacked) Celery messages it holds now for these queues."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2)
        # A queue with priorities is several lists: "enrichment", "enrichment\x06\x163", …
        queued = sum(
            client.llen(key)
            for queue in queues
            for key in client.scan_iter(f"{queue}*")
            if client.type(key) == b"list"
        )
        return queued, client.hlen("unacked")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Workers:
    """`celery worker` processes, each in its own process group so a kill takes its pool.

    Each is named `<name><n>@<host>` and logs to `<logdir>/<name><n>.log`."""

    def __init__(
        self,
        logdir: Path,
        *,
        name: str = "worker",
        queues: str = "enrichment,maintenance",
        concurrency: int = 1,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.logdir = logdir
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.extra = extra
        self.running: list[subprocess.Popen] = []
        self.started = 0

    def start(self) -> subprocess.Popen:
        self.started += 1
        name = f"{self.name}{self.started}"
        log = (self.logdir / f"{name}.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queues,
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "WARNING",
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                *self.extra,
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(process)
        return process

    def kill_one(self) -> int:
        """SIGKILL the oldest worker's process group; return its pid."""
        process = self.running.pop(0)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return process.pid

    def stop(self, *, graceful: bool = False) -> None:
        """End every worker: SIGKILL its group, or (graceful) SIGTERM it so it finishes
        its task first, killing it only past GRACEFUL_STOP_SECONDS."""
        if graceful:
            for process in self.running:
                if process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + GRACEFUL_STOP_SECONDS
            for process in self.running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.running = []


def check_database_name(name: str) -> None:
    """Raise ValueError unless `name` is a plain lowercase PostgreSQL name (it goes into SQL)."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"{name!r} is not a plain lowercase PostgreSQL database name")


def database_create(server_url: str, name: str) -> str:
    """Drop and create database `name` on the server in `server_url`; return its URL."""
    import psycopg

    check_database_name(name)
    parts = urlsplit(server_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_drop(server_url: str, name: str) -> None:
    import psycopg

    check_database_name(name)
    admin = urlunsplit(urlsplit(server_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def configure(database_url: str, redis_url: str, **extra: str) -> None:
    """Point this process (and the workers it starts, through the environment) at the
    script's own database and Redis, with every provider but the sandbox off."""
    for name in VENDOR_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ENRICH_ON_CREATE="false",
        LOG_LEVEL="WARNING",
        DJANGO_DEBUG="false",
        **extra,
    )
