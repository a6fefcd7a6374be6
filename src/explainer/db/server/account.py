"""Which account runs the server programs: ourselves, or an unprivileged user when we are root.

PostgreSQL refuses to run as root. When we are root, every server program runs as
:data:`SERVER_USER` (a login-less system user, created on first use), which must own the data
dir and be able to reach every directory it works in: this module picks the account, creates
the user and checks path traversal for it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from explainer.errors import ServerStartError

SERVER_USER: Final = "explainer_pg"
"""The unprivileged system account server programs run as when explainer runs as root."""


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
