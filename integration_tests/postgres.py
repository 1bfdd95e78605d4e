"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary directory.

    with throwaway_postgres() as server:
        PostgresCache(host=server.host, port=server.port, username=server.user, ...)

It needs the server binaries (`initdb`, `pg_ctl`) of the Debian package `postgresql`, on PATH or
in /usr/lib/postgresql/<version>/bin. The cluster listens on 127.0.0.1 only, on a free port, with
trust authentication (no password checked), and is stopped and deleted on exit, even after an error.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator

HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASE = "destination_tests"
# initdb refuses to run as root, so a root process (CI) runs the server as this system user.
SERVER_OS_USER_WHEN_ROOT = "postgres"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str  # trust authentication ignores it; clients that require one get this
    database: str


def server_binaries() -> Path:
    """The directory holding `initdb`, `pg_ctl` and `createdb` (one installation, so versions match)."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        # /usr/local/bin may hold symlinks to one installation: follow them to find its `createdb`.
        return Path(os.path.realpath(initdb)).parent
    # Debian installs the server binaries off PATH, one directory per major version.
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if installed:
        return Path(installed[-1]).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin: "
        "install the Debian package `postgresql` (apt-get install postgresql)"
    )


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _server_os_user() -> Dict[str, Any]:
    """`subprocess.run` arguments that run a command as the user owning the cluster."""
    if os.getuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(SERVER_OS_USER_WHEN_ROOT)
    except KeyError:
        raise RuntimeError(
            f"Running as root, but there is no `{SERVER_OS_USER_WHEN_ROOT}` user to run PostgreSQL as "
            "(initdb refuses root): install the Debian package `postgresql`, which creates it"
        ) from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(command: list, as_server_user: Dict[str, Any], cwd: Path) -> None:
    # cwd: the server user may not be allowed into the caller's working directory (e.g. /root).
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, **as_server_user)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """Starts a new cluster with one empty database; stops it and deletes its files on exit."""
    binaries, as_server_user = server_binaries(), _server_os_user()
    workdir = Path(tempfile.mkdtemp(prefix="throwaway-postgres-"))
    if as_server_user:
        # The server refuses a data directory it does not own.
        os.chown(workdir, as_server_user["user"], as_server_user["group"])
    data, port = workdir / "data", free_loopback_port()
    pg_ctl = [binaries / "pg_ctl", "--pgdata", data]
    started = False
    try:
        _run([binaries / "initdb", "--pgdata", data, "--username", SUPERUSER, "--auth", "trust",
              "--encoding", "UTF8", "--no-sync"], as_server_user, workdir)  # fmt: skip
        # fsync off: nothing here must survive a crash, and it makes every commit faster.
        options = f"-c listen_addresses={HOST} -p {port} -c unix_socket_directories={workdir} -c fsync=off"
        started = True  # from here on a half-started server must be stopped too
        log = workdir / "server.log"
        try:
            _run([*pg_ctl, "--wait", "--timeout", str(START_TIMEOUT_S), "--log", log, "--options", options, "start"],
                 as_server_user, workdir)  # fmt: skip
        except RuntimeError as error:  # the reason (a port taken, a directory refused) is in the server's log
            raise RuntimeError(f"{error}\nserver log:\n{log.read_text() if log.exists() else '(none)'}") from None
        _run([binaries / "createdb", "--host", HOST, "--port", str(port), "--username", SUPERUSER, DATABASE],
             as_server_user, workdir)  # fmt: skip
        yield PostgresServer(host=HOST, port=port, user=SUPERUSER, password="unused", database=DATABASE)
    finally:
        if started:
            subprocess.run([*pg_ctl, "--mode", "immediate", "stop"], capture_output=True, cwd=workdir, **as_server_user)
        shutil.rmtree(workdir, ignore_errors=True)
