"""Forcing a cluster down and deleting its data dir when pg_ctl cannot do it cleanly.

After a failed ``pg_ctl stop`` or an interrupted start, postmasters and backends may still run
and write into the data dir; this module finds them (by pid file and, on Linux, by command
line), kills them and deletes the directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from explainer.errors import ServerStartError

_SERVER_PROCESS_NAMES: Final = frozenset({"postgres", "postmaster", "sh"})


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
