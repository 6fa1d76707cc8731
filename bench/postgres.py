"""A throw-away PostgreSQL server on 127.0.0.1, where Debian's postgresql is installed.

The tests' ``postgres`` fixtures (tests/conftest.py) and the load bench (bench/load.py) start
theirs here: initdb into a temporary folder, scram-sha-256 passwords as on a real server, and
any ``-c name=value`` settings (``max_connections=8``), which a restart keeps.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class Unavailable(Exception):
    """No PostgreSQL server can be started on this machine (the message says why)."""


@dataclass
class Postgres:
    """A throw-away PostgreSQL server on 127.0.0.1; ``user`` is its superuser."""

    bin: Path
    home: Path  # data folder, socket and log
    port: int
    user: str = "hp"
    password: str = "hp-secret"
    settings: tuple[str, ...] = ()  # name=value server settings, e.g. max_connections=8

    def url(self, database: str, password: str | None = None, user: str | None = None) -> str:
        """The URL that ``user`` (default: the superuser) reaches ``database`` by."""
        who = user or self.user
        return f"postgresql://{who}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str) -> str:
        """Run one of the server's programs (as user postgres when this is root); its stdout."""
        # initdb refuses to run as root: as root, the server runs as user postgres
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*runner, str(self.bin / tool), *args], check=True, capture_output=True, text=True)
        return done.stdout

    def start(self) -> None:
        options = f"-k {self.home} -p {self.port} -h 127.0.0.1 -c fsync=off -c full_page_writes=off"
        options += "".join(f" -c {setting}" for setting in self.settings)
        self.run("pg_ctl", "-D", str(self.home / "data"), "-l", str(self.home / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.home / "data"), "-m", "fast", "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one SQL statement as the superuser, over the local socket; its unaligned output."""
        return self.run(
            "psql", "-h", str(self.home), "-p", str(self.port), "-U", self.user, "-d", database, "-Atc", statement
        )

    def createdb(self, name: str, owner: str | None = None) -> None:
        self.run(
            "createdb",
            "-h",
            str(self.home),
            "-p",
            str(self.port),
            "-U",
            self.user,
            *(["-O", owner] if owner else []),
            name,
        )

    def create_role(self, name: str, password: str) -> None:
        """A login role without superuser rights: the slots ``superuser_reserved_connections`` keeps are not its."""
        self.sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def throwaway(*settings: str) -> Iterator[Postgres]:
    """A PostgreSQL server with ``settings`` (``name=value``) while the block runs, removed after it.

    Raises:
        Unavailable: PostgreSQL is not installed, or this is root and there is no user postgres.
    """
    pg_bin = _postgres_bin()
    if pg_bin is None:
        raise Unavailable("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no user 'postgres' to run the PostgreSQL server") from None
    home = Path(tempfile.mkdtemp(prefix="hpsearch-pg-"))  # not under pytest's tmp: user postgres must enter it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Postgres(bin=pg_bin, home=home, port=port, settings=settings)
    (home / "pw").write_text(server.password)
    if owner is not None:
        for path in (home, home / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    auth = ("--auth-host=scram-sha-256", "--auth-local=trust")
    try:
        server.run("initdb", "-D", str(home / "data"), "-U", server.user, f"--pwfile={home / 'pw'}", *auth, "--no-sync")
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(home, ignore_errors=True)
