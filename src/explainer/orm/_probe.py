"""The script ``load_models`` runs in the user's interpreter (``python -c <this source>``).

It is not imported by explainer: its *text* is passed to ``python -c`` so that
``sys.path[0]`` is the user's working directory (running it as a file would put
explainer's own package directory first, where ``models.py`` would shadow theirs). It
therefore imports nothing of explainer, and keeps to what Python 3.8 and SQLAlchemy 1.4
understand, since the user's interpreter may be older than explainer's.

Usage: ``python -c SOURCE KIND TARGET OUT`` with KIND ``module``, ``attr``
(``module:Base``) or ``file``. The result, success or failure, is one JSON document
written to the file OUT: never to stdout, which the user's module may print to.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import sys
import textwrap
import traceback
from typing import Any


def _write(out: str, document: dict[str, Any]) -> None:
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(document, handle)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _user_frame(error: BaseException) -> str | None:
    """``file:line`` of the innermost traceback frame in the user's code: not the standard
    library, not an installed package (SQLAlchemy's own frames say nothing useful)."""
    frames = traceback.extract_tb(error.__traceback__)
    probe = os.path.abspath(__file__) if "__file__" in globals() else "<string>"
    stdlib = os.path.dirname(os.__file__)
    for frame in reversed(frames):
        name = frame.filename
        if name.startswith("<") or name == probe or name.startswith(stdlib + os.sep):
            continue
        if "site-packages" in name or "dist-packages" in name:
            continue
        return f"{name}:{frame.lineno}"
    return None


def _module_name(kind: str, target: str) -> str:
    """The module to import; for a file, its directory (or package root) goes on sys.path."""
    if kind != "file":
        return target.partition(":")[0]
    directory, filename = os.path.split(os.path.abspath(target))
    parts = [os.path.splitext(filename)[0]]
    # A file inside a package is imported as package.module, so that its relative
    # imports work; the package's parent directory goes on sys.path.
    while os.path.exists(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    if parts[-1] == "__init__":
        parts.pop()
    sys.path.insert(0, directory)
    return ".".join(parts)


def _not_found_is_target(error: ModuleNotFoundError, module_name: str) -> bool:
    missing = error.name or ""
    return module_name == missing or module_name.startswith(missing + ".")


def _table_key(table: Any) -> str:
    schema = getattr(table, "schema", None)
    return table.name if schema in (None, "", "public") else f"{schema}.{table.name}"


def _index_name(index: Any) -> str | None:
    """The name SQLAlchemy gives ``index`` in CREATE INDEX (naming conventions applied)."""
    name = index.name
    if isinstance(name, str) and type(name).__name__ not in ("_NoneName", "_defer_none_name"):
        return str(name)
    try:
        from sqlalchemy.dialects import postgresql

        dialect: Any = postgresql.dialect
        dialect = dialect()
        compiler: Any = dialect.ddl_compiler(dialect, None)
        return str(compiler._prepared_index_name(index, include_schema=False))
    except Exception:
        return None


def _convention(metadata: Any) -> dict[str, str]:
    result = {}
    for key, value in dict(getattr(metadata, "naming_convention", {}) or {}).items():
        if not isinstance(value, str):
            continue
        if isinstance(key, str):
            result[key] = value
        else:
            short = {
                "Index": "ix",
                "UniqueConstraint": "uq",
                "CheckConstraint": "ck",
                "ForeignKeyConstraint": "fk",
                "PrimaryKeyConstraint": "pk",
            }
            result[short.get(getattr(key, "__name__", ""), str(key))] = value
    return result


def _class_source(cls: type) -> dict[str, Any]:
    """File and line of ``cls``, and where its attributes and __table_args__ are written."""
    found: dict[str, Any] = {
        "file": None,
        "line": None,
        "attribute_lines": {},
        "attribute_sources": {},
        "table_args_source": None,
        "table_args_line": None,
    }
    try:
        found["file"] = inspect.getsourcefile(cls)
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return found
    found["line"] = start
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    classdef = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if classdef is None:
        return found
    found["line"] = start + classdef.lineno - 1
    for statement in classdef.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            names = [statement.target.id]
        elif isinstance(statement, ast.Assign):
            names = [t.id for t in statement.targets if isinstance(t, ast.Name)]
        else:
            continue
        text = ast.get_source_segment(source, statement) or ""
        line = start + statement.lineno - 1
        for name in names:
            if name == "__table_args__":
                found["table_args_source"] = text
                found["table_args_line"] = line
            elif not name.startswith("__"):
                found["attribute_lines"][name] = line
                found["attribute_sources"][name] = text
    return found


def _lazy(value: Any) -> str:
    if value is True:
        return "select"
    if value is False:
        return "joined"
    if value is None:
        return "noload"
    return str(value)


def _relationship(mapper: Any, prop: Any) -> dict[str, Any]:
    table = mapper.local_table
    direction = prop.direction.name
    pairs = list(prop.local_remote_pairs or [])
    if direction == "MANYTOMANY":
        # (this table's column, secondary's column): the lazy load filters the secondary.
        pairs = [(lc, rc) for lc, rc in pairs if lc.table is table] or pairs[:1]
    secondary = prop.secondary
    return {
        "attribute": prop.key,
        "target_class": prop.mapper.class_.__name__,
        "target_table": _table_key(prop.mapper.local_table),
        "direction": direction,
        "uselist": bool(prop.uselist),
        "local_columns": [lc.name for lc, _ in pairs],
        "remote_columns": [rc.name for _, rc in pairs],
        "secondary": _table_key(secondary) if secondary is not None else None,
        "lazy": _lazy(prop.lazy),
    }


def _describe(mapper: Any) -> dict[str, Any] | None:
    from sqlalchemy import Table

    table = mapper.local_table
    if not isinstance(table, Table) or getattr(mapper, "single", False):
        return None
    columns = {}
    for prop in mapper.column_attrs:
        for column in prop.columns:
            if getattr(column, "table", None) is table and column.name not in columns:
                columns[column.name] = prop.key
    relationships = [
        _relationship(mapper, prop) for prop in mapper.relationships if prop.parent is mapper
    ]
    indexes = sorted(n for n in (_index_name(i) for i in table.indexes) if n)
    cls = mapper.class_
    described = {
        "name": cls.__name__,
        "module": cls.__module__,
        "table": table.name,
        "schema": table.schema,
        "columns": columns,
        "relationships": relationships,
        "indexes": indexes,
        "naming_convention": _convention(table.metadata),
    }
    described.update(_class_source(cls))
    return described


def _registries(subject: Any, label: str) -> list[Any]:
    if subject is None:
        mapper_module = sys.modules["sqlalchemy.orm.mapper"]
        return list(getattr(mapper_module, "_all_registries")())  # noqa: B009
    from sqlalchemy.orm import registry as registry_type

    if isinstance(subject, registry_type):
        return [subject]
    found = getattr(subject, "registry", None)
    if isinstance(found, registry_type):
        return [found]
    raise TypeError(f"{label} is not a declarative base or a registry")


def main(kind: str, target: str, out: str) -> None:
    try:
        import sqlalchemy
        from sqlalchemy.orm import configure_mappers
    except ImportError as error:
        _write(out, {"ok": False, "kind": "no_sqlalchemy", "message": _first_line(error)})
        return
    module_name = _module_name(kind, target)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as error:
        message = f"{error.filename}:{error.lineno}: {type(error).__name__}: {error.msg}"
        _write(out, {"ok": False, "kind": "syntax", "message": message})
        return
    except ModuleNotFoundError as error:
        kind_ = "not_found" if _not_found_is_target(error, module_name) else "missing"
        where = _user_frame(error)
        message = f"No module named {error.name!r}" + (f" (imported at {where})" if where else "")
        _write(out, {"ok": False, "kind": kind_, "message": message, "module": error.name})
        return
    except BaseException as error:  # SystemExit too: report, never crash
        where = _user_frame(error)
        message = _first_line(error) + (f" (at {where})" if where else "")
        _write(out, {"ok": False, "kind": "raised", "message": message})
        return
    subject = None
    if kind == "attr":
        subject = module
        for part in target.partition(":")[2].split("."):
            if not hasattr(subject, part):
                message = f"module {module_name!r} has no attribute {part!r}"
                _write(out, {"ok": False, "kind": "attribute", "message": message})
                return
            subject = getattr(subject, part)
    try:
        configure_mappers()
        registries = _registries(subject, target)
    except BaseException as error:
        where = _user_frame(error)
        message = _first_line(error) + (f" (at {where})" if where else "")
        _write(out, {"ok": False, "kind": "configure", "message": message})
        return
    classes = []
    for registry in registries:
        for mapper in sorted(registry.mappers, key=lambda m: m.class_.__name__):
            described = _describe(mapper)
            if described is not None:
                classes.append(described)
    _write(
        out,
        {"ok": True, "classes": classes, "sqlalchemy": sqlalchemy.__version__},
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
