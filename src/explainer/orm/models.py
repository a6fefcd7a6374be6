"""The user's SQLAlchemy models, as a map explainer can read without importing them.

The user's module is imported in a *subprocess* with the user's own interpreter: an
import can fail, hang, print, read stdin or pull in half the application, and none of
that may break explainer or leave a process behind. The subprocess (``_probe.py``) calls
``configure_mappers()``, walks the registries and writes one JSON document to a file
explainer names (not stdout, which the user's module may write to); this module turns
that document into :class:`ModelMap`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from explainer.errors import ExplainerError

Direction = Literal["ONETOMANY", "MANYTOONE", "MANYTOMANY"]
Source = Literal["models", "reflected"]


class ModelImportError(ExplainerError):
    """The user's models could not be imported or described (one line, says what to do)."""


@dataclass(frozen=True)
class RelationshipInfo:
    """One ``relationship()`` attribute, as SQLAlchemy configured it.

    ``local_columns``/``remote_columns`` are column names (not attribute keys) in join
    order: for a many-to-one ``OrderItem.book`` local is ``("book_id",)`` and remote
    ``("id",)``; for a many-to-many they are the columns of this table and of the target
    table that the ``secondary`` table's foreign keys point at.
    """

    attribute: str
    target_class: str
    target_table: str
    direction: Direction
    uselist: bool
    local_columns: tuple[str, ...]
    remote_columns: tuple[str, ...]
    secondary: str | None
    lazy: str


@dataclass(frozen=True)
class MappedClass:
    """One mapped class and the table it maps.

    ``columns`` maps a column name to the attribute key that holds it (they differ when
    a model writes ``kind: Mapped[str] = mapped_column("type", ...)``). ``file``/``line``
    say where the class is defined, so a suggestion can point at it (``None`` when the
    class has no source, e.g. a reflected table).
    """

    name: str
    module: str
    file: str | None
    line: int | None
    table: str
    schema: str | None
    columns: dict[str, str]
    relationships: list[RelationshipInfo] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    naming_convention: dict[str, str] = field(default_factory=dict)
    #: Attribute key -> line and source text of its declaration in the class body
    #: (``email: Mapped[str] = mapped_column(String(200))``), for "change this line".
    attribute_lines: dict[str, int] = field(default_factory=dict)
    attribute_sources: dict[str, str] = field(default_factory=dict)
    #: The class body's ``__table_args__ = ...`` statement as written, and its line.
    table_args_source: str | None = None
    table_args_line: int | None = None

    @property
    def qualified_table(self) -> str:
        """The key of this class in :attr:`ModelMap.classes`."""
        return table_key(self.table, self.schema)

    def attribute(self, column: str) -> str | None:
        """The attribute key that holds ``column``, None when the column is not mapped."""
        return self.columns.get(column)


@dataclass(frozen=True)
class ModelMap:
    """Every mapped class, keyed by table name (``schema.table`` outside ``public``)."""

    classes: dict[str, MappedClass]
    source: Source

    def for_table(self, table: str, schema: str | None = None) -> MappedClass | None:
        """The class mapping ``table``: accepts ``t``, ``public.t`` or ``s.t``."""
        if schema is None and "." in table:
            schema, _, table = table.rpartition(".")
        found = self.classes.get(table_key(table, schema))
        if found is None and schema is None:
            matches = [c for c in self.classes.values() if c.table == table]
            if len(matches) == 1:
                return matches[0]
        return found


def table_key(table: str, schema: str | None) -> str:
    """``orders`` for ``public.orders`` or no schema, ``sales.orders`` otherwise."""
    return table if schema in (None, "", "public") else f"{schema}.{table}"


def load_models(target: str, *, python: str = sys.executable, timeout: float = 20.0) -> ModelMap:
    """Import ``target`` in a subprocess with ``python`` and describe its mapped classes.

    ``target`` is a module path (``myapp.models``), ``module:Base`` (a declarative base
    or registry attribute: only its registry is walked) or a file path
    (``app/models.py``, imported with its directory on ``sys.path``, or as
    ``package.module`` when that directory is a package). The subprocess runs in the
    current directory with it on ``PYTHONPATH``, as the user's own ``python -c "import
    myapp.models"`` would. Raises :class:`ModelImportError` with one line on any
    failure, within ``timeout`` seconds, and leaves no process behind.
    """
    kind = _target_kind(target)
    label = target
    with tempfile.TemporaryDirectory(prefix="explainer-models-") as scratch:
        out = Path(scratch) / "models.json"
        errors = Path(scratch) / "stderr.txt"
        document = _run_probe(python, kind, target, out, errors, timeout, label)
    return model_map_from_document(document, label, python)


def _target_kind(target: str) -> str:
    if target.endswith(".py") or os.sep in target or "/" in target or Path(target).is_file():
        if not Path(target).is_file():
            raise ModelImportError(f"models file {target} does not exist")
        return "file"
    module, colon, attribute = target.partition(":")
    if colon:
        if not module or not attribute:
            raise ModelImportError(
                f"--models {target!r}: expected a module path, module:Base or a file path"
            )
        return "attr"
    return "module"


def _environment() -> dict[str, str]:
    """The caller's environment with the current directory on PYTHONPATH."""
    env = dict(os.environ)
    paths = [os.getcwd(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # Importing must not leave __pycache__ directories in the user's tree.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run_probe(
    python: str, kind: str, target: str, out: Path, errors: Path, timeout: float, label: str
) -> dict[str, Any]:
    source = (Path(__file__).with_name("_probe.py")).read_text(encoding="utf-8")
    started = time.monotonic()
    with errors.open("wb") as stderr:
        try:
            process = subprocess.Popen(
                [python, "-c", source, kind, target, str(out)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=os.getcwd(),
                env=_environment(),
                # Its own process group, so that a timeout kills whatever it started too.
                start_new_session=True,
            )
        except OSError as error:
            raise ModelImportError(
                f"cannot run {python} to import {label}: {error.strerror or error}"
            ) from error
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise ModelImportError(
                f"importing {label} took longer than {timeout:g} s (does it connect to a "
                "server or wait for input at import time?); stopped it"
            ) from None
        finally:
            # Children the import started (and left running) go too.
            _kill_group(process)
    if not out.exists():
        tail = _last_line(errors)
        elapsed = time.monotonic() - started
        raise ModelImportError(
            f"importing {label} with {python} exited with code {code} after {elapsed:.1f} s "
            f"without describing the models" + (f": {tail}" if tail else "")
        )
    try:
        document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelImportError(f"importing {label}: unreadable probe output ({error})") from None
    return document


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _failure(document: dict[str, Any], label: str, python: str) -> ModelImportError:
    kind = document.get("kind")
    message = str(document.get("message", "")).strip()
    if kind == "no_sqlalchemy":
        return ModelImportError(
            f"SQLAlchemy is not installed in {python}; pass --python with the interpreter "
            "of your application's environment"
        )
    if kind == "syntax":
        return ModelImportError(f"syntax error importing {label}: {message}")
    if kind == "not_found":
        return ModelImportError(
            f"cannot import {label}: {message}; run explainer from your project's root or "
            "add it to PYTHONPATH"
        )
    if kind == "missing":
        module = document.get("module")
        return ModelImportError(
            f"importing {label} needs the module {module!r}, which is not installed in "
            f"{python}: {message}"
        )
    if kind == "configure":
        return ModelImportError(f"configuring the mappers of {label} failed: {message}")
    if kind == "attribute":
        return ModelImportError(f"cannot use {label}: {message}")
    return ModelImportError(f"importing {label} failed: {message}")


def model_map_from_document(
    document: dict[str, Any], label: str = "the models", python: str = sys.executable
) -> ModelMap:
    """The :class:`ModelMap` of the probe's JSON document (raises on a failure document)."""
    if not document.get("ok"):
        raise _failure(document, label, python)
    classes: dict[str, MappedClass] = {}
    for entry in document.get("classes", []):
        mapped = MappedClass(
            name=entry["name"],
            module=entry["module"],
            file=entry.get("file"),
            line=entry.get("line"),
            table=entry["table"],
            schema=entry.get("schema"),
            columns=dict(entry["columns"]),
            relationships=[
                RelationshipInfo(
                    attribute=r["attribute"],
                    target_class=r["target_class"],
                    target_table=r["target_table"],
                    direction=r["direction"],
                    uselist=r["uselist"],
                    local_columns=tuple(r["local_columns"]),
                    remote_columns=tuple(r["remote_columns"]),
                    secondary=r.get("secondary"),
                    lazy=r["lazy"],
                )
                for r in entry.get("relationships", [])
            ],
            indexes=list(entry.get("indexes", [])),
            naming_convention=dict(entry.get("naming_convention", {})),
            attribute_lines=dict(entry.get("attribute_lines", {})),
            attribute_sources=dict(entry.get("attribute_sources", {})),
            table_args_source=entry.get("table_args_source"),
            table_args_line=entry.get("table_args_line"),
        )
        classes.setdefault(mapped.qualified_table, mapped)
    if not classes:
        raise ModelImportError(
            f"{label} defines no mapped classes; point --models at the module that defines "
            "them (or at module:Base)"
        )
    return ModelMap(classes=classes, source="models")
