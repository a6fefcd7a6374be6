"""The index suggestions as a patch to the user's model files, the rest as snippets.

:func:`model_patch` writes a unified diff (``a/<path>``/``b/<path>`` headers relative to
the project root, so ``git apply`` and ``patch -p1`` take it as is) that declares each
suggested index in the class that maps its table: ``index=True`` on the column's
``mapped_column(...)``, or the class's ``__table_args__`` with the new ``Index`` among
the entries it already has (added after ``__tablename__`` when it has none), with the
``Index``/``text`` imports the file lacks. The code is :mod:`explainer.render.sqlalchemy`'s
(named as the models' naming convention names it, so that the model, the database and
Alembic's autogenerate agree); this module only places it in the file.

Positions are read from the file itself with :mod:`ast` at export time, not trusted from
the model map: the file may have changed since the models were described, and a patch
that does not apply is worse than none. Whatever cannot be placed safely (a file outside
the project, a declaration written in a form the code cannot extend, a class not found)
stays a snippet in :func:`orm_snippets`, with the reason. Loader-option rewrites are
snippets too: a log says which statements ran, not which line of the user's code sent
them. Only the files of the model map are ever read or patched.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from explainer.advise.model import IndexCandidate
from explainer.orm.models import MappedClass, ModelMap
from explainer.render.sqlalchemy import ModelIndexSuggestion, model_index_suggestion
from explainer.report import Report

__all__ = ["model_patch", "orm_snippets"]


def model_patch(report: Report, *, root: str | Path | None = None) -> str | None:
    """The unified diff that declares the report's index suggestions in the user's models.

    None when there is nothing to patch: no ``--models`` (reflected or guessed classes
    have no file), or no suggestion on a mapped class whose declaration could be placed
    (those are in :func:`orm_snippets`). Paths are relative to ``root`` (default: the
    current directory, where ``--models`` was given from); files outside it are left out.
    """
    plan = _plan(report, _base(root))
    if not plan.files:
        return None
    return "".join(_diff(change) for change in plan.files)


def orm_snippets(report: Report, *, root: str | Path | None = None) -> str:
    """Markdown: the model changes the patch could not make (with why), and the ORM
    rewrites (loader options, other ORM habits) to apply where the query code is.

    Empty when there is nothing to show.
    """
    plan = _plan(report, _base(root))
    lines: list[str] = []
    if plan.left_out:
        lines += ["## Model changes to make by hand", ""]
        for item in plan.left_out:
            lines += _left_out_snippet(item)
    nplus1 = [f for f in report.orm.nplus1 if f.rewrite is not None]
    nested = {id(child) for f in report.orm.nplus1 for child in f.nested}
    roots = [f for f in nplus1 if id(f) not in nested]
    if roots:
        lines += [
            "## Loader-option rewrites",
            "",
            "_Where the query is written is not known from the log: change the statement "
            "that reads the root class's rows._",
            "",
        ]
        for finding in roots:
            rewrite = finding.rewrite
            assert rewrite is not None  # filtered above
            lines += [f"### `{finding.relationship_name}` -> `{finding.strategy}`", ""]
            if rewrite.defined_at:
                lines += [f"Relationship declared at `{rewrite.defined_at}`.", ""]
            lines += _before_after(rewrite.imports, rewrite.before, rewrite.after)
    if report.orm.patterns:
        lines += ["## Other ORM rewrites", ""]
        for pattern in report.orm.patterns:
            lines += [f"### `{pattern.rule}`: `{pattern.model_class}` (`{pattern.table}`)", ""]
            lines += [pattern.message, ""]
            if pattern.defined_at:
                lines += [f"Declared at `{pattern.defined_at}`.", ""]
            r = pattern.rewrite
            lines += _before_after(r.imports, r.before, r.after)
    return "\n".join(lines).rstrip("\n") + "\n" if lines else ""


# -- planning ------------------------------------------------------------------------------


@dataclass
class _Edit:
    """Replace lines ``start``..``end`` (1-based, inclusive; ``end == start - 1`` inserts
    before ``start``) with ``lines`` (each ending in the file's newline)."""

    start: int
    end: int
    lines: list[str]


@dataclass
class _FileChange:
    path: Path
    relative: str
    original: list[str]
    edits: list[_Edit] = field(default_factory=list)
    #: sqlalchemy names the new declarations use (``Index``, ``text``...), for one import.
    needed: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _LeftOut:
    candidate: IndexCandidate
    model: ModelIndexSuggestion | None
    reason: str


@dataclass
class _Plan:
    files: list[_FileChange] = field(default_factory=list)
    left_out: list[_LeftOut] = field(default_factory=list)


def _base(root: str | Path | None) -> Path:
    return Path(root if root is not None else os.getcwd()).resolve()


def _suggest(candidate: IndexCandidate, mapped: MappedClass) -> ModelIndexSuggestion | None:
    try:
        return model_index_suggestion(candidate, mapped)
    except Exception:  # one declaration we cannot write must not lose the others
        return None


def _plan(report: Report, base: Path) -> _Plan:
    plan = _Plan()
    models = report.orm.user_models
    if models is None:
        return plan
    # Per class: its column changes and its __table_args__ entries, in report order.
    by_class: dict[str, tuple[MappedClass, list[IndexCandidate]]] = {}
    for suggestion in report.suggestions:
        candidate = suggestion.candidate
        mapped = models.for_table(candidate.table, candidate.schema)
        if mapped is None:
            plan.left_out.append(_LeftOut(candidate, None, "no class of your models maps it"))
            continue
        by_class.setdefault(mapped.qualified_table, (mapped, []))[1].append(candidate)
    files: dict[str, _FileChange] = {}
    for mapped, candidates in by_class.values():
        _plan_class(plan, files, models, mapped, candidates, base)
    for change in files.values():
        imports = _import_edit(change) if change.needed else None
        if imports is not None:
            change.edits.append(imports)
        if change.edits:
            plan.files.append(change)
    plan.files.sort(key=lambda c: c.relative)
    return plan


def _plan_class(
    plan: _Plan,
    files: dict[str, _FileChange],
    models: ModelMap,
    mapped: MappedClass,
    candidates: list[IndexCandidate],
    base: Path,
) -> None:
    def leave(candidate: IndexCandidate, model: ModelIndexSuggestion | None, why: str) -> None:
        plan.left_out.append(_LeftOut(candidate, model, why))

    known_files = {c.file for c in models.classes.values() if c.file}
    if mapped.file is None or mapped.file not in known_files:
        for candidate in candidates:
            leave(candidate, _suggest(candidate, mapped), f"class {mapped.name} has no source file")
        return
    path = Path(mapped.file).resolve()
    relative = os.path.relpath(path, base)
    if relative.startswith(".."):
        for candidate in candidates:
            leave(candidate, _suggest(candidate, mapped), f"{mapped.file} is outside {base}")
        return
    change = files.get(str(path))
    if change is None:
        try:
            # Bytes, not read_text(): universal newlines would hide a CRLF file's "\r".
            text = path.read_bytes().decode("utf-8")
            ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as error:
            for candidate in candidates:
                leave(candidate, _suggest(candidate, mapped), f"cannot read {path}: {error}")
            return
        change = _FileChange(path, Path(relative).as_posix(), _lines(text))
        files[str(path)] = change
    text = "".join(change.original)
    tree = ast.parse(text)
    newline = "\r\n" if "\r\n" in text else "\n"
    classdef = _find_class(tree, mapped)
    if classdef is None:
        for candidate in candidates:
            leave(candidate, _suggest(candidate, mapped), f"class {mapped.name} not found")
        return
    table_args = mapped
    table_args_model: ModelIndexSuggestion | None = None
    table_args_candidates: list[IndexCandidate] = []
    for candidate in candidates:
        model = _suggest(candidate, table_args)
        if model is None:
            leave(candidate, None, "its declaration cannot be written in the model's terms")
            continue
        if model.form == "column":
            edit = _column_edit(change, classdef, mapped, model, newline)
            if isinstance(edit, str):
                leave(candidate, model, edit)
            elif not _overlaps(change, edit):
                change.edits.append(edit)
            else:
                leave(candidate, model, "another change already rewrites that line")
            continue
        if "# add " in model.code or not _is_tuple_assignment(model.code):
            leave(candidate, model, "its __table_args__ is not a tuple the patch can extend")
            continue
        # The next entry goes into this one's __table_args__: all entries end in one.
        table_args = dataclasses.replace(
            table_args,
            table_args_source=model.code,
            indexes=[*table_args.indexes, model.name],
        )
        table_args_model = model
        table_args_candidates.append(candidate)
    if table_args_model is None:
        return
    edit = _table_args_edit(change, classdef, table_args_model.code, newline)
    if isinstance(edit, str) or _overlaps(change, edit):
        why = edit if isinstance(edit, str) else "another change already rewrites those lines"
        for candidate in table_args_candidates:
            leave(candidate, _suggest(candidate, mapped), why)
        return
    change.edits.append(edit)
    change.needed.update(_needed(table_args_model.code))


def _lines(text: str) -> list[str]:
    """The file's lines with their endings, split at ``\n`` only (as git and ast count;
    ``str.splitlines`` would also split at form feeds and other separators)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _find_class(tree: ast.Module, mapped: MappedClass) -> ast.ClassDef | None:
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == mapped.name]
    at_line = [n for n in found if n.lineno == mapped.line]
    if len(at_line) == 1:
        return at_line[0]
    return found[0] if len(found) == 1 else None


def _target(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id
    if (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
    ):
        return statement.targets[0].id
    return None


def _statement(classdef: ast.ClassDef, name: str) -> ast.stmt | None:
    for statement in classdef.body:
        if _target(statement) == name:
            return statement
    return None


def _replace(
    change: _FileChange, statement: ast.stmt, code: str, indent: str, newline: str
) -> _Edit | str:
    """Replace the statement's text with ``code`` (continuation lines indented by
    ``indent``), keeping what precedes and follows it on its lines (a comment...)."""
    end_line, end_col = statement.end_lineno, statement.end_col_offset
    if end_line is None or end_col is None:  # pragma: no cover - ast always sets them
        return "its position in the file is unknown"
    first = change.original[statement.lineno - 1]
    last = change.original[end_line - 1]
    prefix = first.encode("utf-8")[: statement.col_offset].decode("utf-8")
    suffix = last.encode("utf-8")[end_col:].decode("utf-8").rstrip("\r\n")
    if ";" in prefix or suffix.lstrip().startswith(";"):
        return "its line holds other statements"
    code_lines = code.splitlines()
    body = [code_lines[0], *[(indent + c if c.strip() else c) for c in code_lines[1:]]]
    body[0] = prefix + body[0]
    body[-1] = body[-1] + suffix
    return _Edit(statement.lineno, end_line, [line + newline for line in body])


def _column_edit(
    change: _FileChange,
    classdef: ast.ClassDef,
    mapped: MappedClass,
    model: ModelIndexSuggestion,
    newline: str,
) -> _Edit | str:
    attribute = next((a for a, line in mapped.attribute_lines.items() if line == model.line), None)
    statement = _statement(classdef, attribute) if attribute is not None else None
    if statement is None or statement.lineno != model.line:
        return f"the column's declaration in class {mapped.name} is not where it was"
    source = mapped.attribute_sources.get(attribute or "")
    if model.code == source:
        return "the column already says index=True (are the migrations applied?)"
    if "# add index=True" in model.code:
        return "its column is not declared with one mapped_column(...) call"
    # The probe dedented the class: its continuation lines are relative to the class.
    return _replace(change, statement, model.code, " " * classdef.col_offset, newline)


def _is_tuple_assignment(code: str) -> bool:
    try:
        [statement] = ast.parse(code).body
    except (SyntaxError, ValueError):
        return False
    return isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Tuple)


def _table_args_edit(
    change: _FileChange, classdef: ast.ClassDef, code: str, newline: str
) -> _Edit | str:
    existing = _statement(classdef, "__table_args__")
    first = classdef.body[0]
    indent = " " * first.col_offset
    if first.lineno == classdef.lineno:
        return f"class {classdef.name} is written on one line"
    if existing is not None:
        return _replace(change, existing, code, indent, newline)
    # After __tablename__ (where projects write it), else after the docstring, else first.
    anchor = _statement(classdef, "__tablename__")
    if anchor is None and _is_docstring(first):
        anchor = first
    at = (anchor.end_lineno or anchor.lineno) + 1 if anchor is not None else first.lineno
    lines = [(indent + c if c.strip() else c) + newline for c in code.splitlines()]
    return _Edit(at, at - 1, lines)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


# -- imports -------------------------------------------------------------------------------


def _bound_names(tree: ast.Module) -> set[str]:
    """Names the module binds at its top level (imports, assignments, definitions)."""
    names: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            for alias in statement.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(statement.name)
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _needed(code: str) -> list[str]:
    """The sqlalchemy names the generated ``__table_args__`` uses."""
    uses = {"Index": r"\bIndex\(", "text": r"\btext\(", "func": r"\bfunc\."}
    return [name for name, pattern in uses.items() if re.search(pattern, code)]


def _sort_key(name: str) -> tuple[int, str]:
    """isort's (and ruff's) order by type: CONSTANTS, Classes, functions."""
    bare = name.split(" as ")[0]
    kind = 0 if bare.isupper() and len(bare) > 1 else (1 if bare[:1].isupper() else 2)
    return kind, bare.lower()


def _import_edit(change: _FileChange) -> _Edit | None:
    """Add the names the new declarations need and the module lacks: to its single-line
    ``from sqlalchemy import ...``, else as a line of their own after its imports."""
    text = "".join(change.original)
    tree = ast.parse(text)
    newline = "\r\n" if "\r\n" in text else "\n"
    bound = _bound_names(tree)
    missing = sorted((n for n in change.needed if n not in bound), key=_sort_key)
    if not missing:
        return None
    for statement in tree.body:
        if (
            isinstance(statement, ast.ImportFrom)
            and statement.module == "sqlalchemy"
            and statement.level == 0
            and statement.lineno == statement.end_lineno
            and "(" not in change.original[statement.lineno - 1]
            and statement.col_offset == 0
        ):
            line = change.original[statement.lineno - 1]
            end = statement.end_col_offset or len(line)
            names = [
                a.name if a.asname is None else f"{a.name} as {a.asname}" for a in statement.names
            ]
            merged = sorted([*names, *missing], key=_sort_key)
            rest = line[end:].rstrip("\r\n")
            new = f"from sqlalchemy import {', '.join(merged)}{rest}{newline}"
            return _Edit(statement.lineno, statement.lineno, [new])
    imports = [s for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
    leading = [s for s in tree.body if not _is_docstring(s)]
    after = 0
    if imports:
        after = max(s.end_lineno or s.lineno for s in imports)
    elif tree.body and _is_docstring(tree.body[0]):
        after = tree.body[0].end_lineno or tree.body[0].lineno
    if after == 0 and leading:
        after = leading[0].lineno - 1
    line = f"from sqlalchemy import {', '.join(sorted(missing, key=_sort_key))}{newline}"
    return _Edit(after + 1, after, [line])


# -- output --------------------------------------------------------------------------------


def _overlaps(change: _FileChange, edit: _Edit) -> bool:
    for other in change.edits:
        if edit.start <= max(other.end, other.start) and other.start <= max(edit.end, edit.start):
            return True
    return False


def _diff(change: _FileChange) -> str:
    new = list(change.original)
    for edit in sorted(change.edits, key=lambda e: e.start, reverse=True):
        new[edit.start - 1 : edit.end] = edit.lines
    lines = difflib.unified_diff(
        change.original, new, f"a/{change.relative}", f"b/{change.relative}"
    )
    out = []
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def _fence(language: str, code: str) -> list[str]:
    return [f"```{language}", code, "```", ""]


def _before_after(imports: tuple[str, ...], before: str, after: str) -> list[str]:
    code = "\n".join((*imports, "", after)) if imports else after
    return ["Before:", "", *_fence("python", before), "After:", "", *_fence("python", code)]


def _left_out_snippet(item: _LeftOut) -> list[str]:
    candidate = item.candidate
    lines = [
        f"### `{candidate.name}` on `{candidate.table}`",
        "",
        f"Not patched: {item.reason}.",
        "",
    ]
    model = item.model
    if model is None:
        return lines
    place = f"{model.file}:{model.line}" if model.file and model.line else model.file or "?"
    lines += [f"In class `{model.class_name}` (`{place}`):", ""]
    lines += _fence("python", f"{model.imports}\n\n{model.code}")
    if model.after_class is not None:
        lines += ["Or after the class:", "", *_fence("python", model.after_class)]
    return lines
