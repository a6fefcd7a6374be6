"""Running one server program (initdb, pg_ctl, postgres) as a given account.

Server programs must not inherit our PG* environment, must not hold a pipe we wait on (pg_ctl
leaves a postmaster running), and must die with their children when we are interrupted, so
they are not run with a plain :func:`subprocess.run`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from explainer.db.server.account import _Account
from explainer.errors import ServerStartError


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
