"""Build hook: compile the log-ingest hot path with mypyc when this machine can.

The modules listed in HOT are ordinary, strictly typed Python; mypyc compiles the same
source to C extensions, which read a large PostgreSQL log about 1.5x faster on one core
(docs/benchmarks.md, "log ingest"). Nothing else changes: there is no second
implementation to keep in step, and any failure (no compiler, no mypy in the build
environment, a mypyc error) leaves the pure-Python package, which is what
``EXPLAINER_PURE_PYTHON=1`` asks for explicitly.

Editable installs (``pip install -e``, the development and test setup) stay pure Python:
compiled modules would shadow the sources, and an edited module would keep running its
old compiled code until the next install. ``.ci/run`` tests the compiled build separately.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HOT = [
    "src/explainer/capture/model.py",
    "src/explainer/capture/prefix.py",
    "src/explainer/capture/records.py",
    "src/explainer/capture/stderr.py",
    "src/explainer/capture/pglog.py",
    "src/explainer/workload/__init__.py",
    "src/explainer/workload/fingerprint.py",
    "src/explainer/workload/model.py",
]


def _warn(message: str) -> None:
    print(f"explainer: {message}; installing the pure-Python modules", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """All the compiled modules or none: a partial set would not import."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any failure means pure Python
            _warn(f"cannot compile ({exc})")
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)


def _editable() -> bool:
    """True while pip builds an editable install (PEP 660 runs ``editable_wheel``)."""
    return any(arg.startswith("editable") for arg in sys.argv[1:])


def _extensions() -> list[Any]:
    if os.environ.get("EXPLAINER_PURE_PYTHON") or _editable():
        return []
    try:
        from mypyc.build import mypycify

        return list(mypycify(HOT, opt_level="3", group_name="explainer_compiled"))
    except Exception as exc:  # noqa: BLE001 - mypy missing, or mypyc rejects a module
        _warn(f"mypyc unavailable ({exc})")
        return []
    except SystemExit:  # mypy's type errors end in sys.exit, after printing them
        _warn("mypyc could not type-check the hot modules (errors above)")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
