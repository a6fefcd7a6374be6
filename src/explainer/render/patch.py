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
stays a snippet in :func:`orm_snippets`, with the reason. Only the files of the model
map are ever read or patched for indexes.

Loader options: a log says which statements ran, not which line of the user's code sent
them, so from logs an N+1 rewrite is a snippet. With the in-app capture a finding knows
the application line that ran its parent query (``source_location``); when that file is
under the project root and the statement at that line (or the assignment of the variable
it executes, earlier in the same function) builds ``select(Root)`` or ``.query(Root)``
of the finding's root class, the patch appends ``.options(selectinload(Root.attr))`` to
that call and imports the loader functions. Anything else (another form, an ambiguous
line, a file that moved) stays a snippet naming ``file:line`` (:func:`loader_snippets`).
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
from explainer.orm.nplus1 import NPlusOne
from explainer.render.sqlalchemy import ModelIndexSuggestion, model_index_suggestion
from explainer.report import Report

__all__ = ["loader_snippets", "model_patch", "orm_snippets"]


def model_patch(report: Report, *, root: str | Path | None = None) -> str | None:
    """The unified diff that declares the report's index suggestions in the user's models.

    With call sites (the in-app capture), the same diff also adds each N+1 finding's
    loader option where its parent query is built, when it can be placed (see the module's
    docstring). None when there is nothing to patch: no ``--models`` (reflected or guessed
    classes have no file) and no loader option placed, or no suggestion on a mapped class
    whose declaration could be placed (those are in :func:`orm_snippets`). Paths are
    relative to ``root`` (default: the current directory, where ``--models`` was given
    from, and where the application ran); files outside it are left out.
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
    placed = {id(loader.finding) for loader in plan.loaders}
    roots = [f for f in _loader_roots(report) if id(f) not in placed]
    if roots:
        lines += ["## Loader-option rewrites", "", *_loader_lines(roots, plan)]
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


def loader_snippets(report: Report, *, root: str | Path | None = None) -> str:
    """Markdown: the N+1 loader options :func:`model_patch` could not place although the
    application line to change is known (in-app capture), each with why. Empty when there
    is none (from logs: the line is not known, and ``report.md`` has the rewrites)."""
    plan = _plan(report, _base(root))
    placed = {id(loader.finding) for loader in plan.loaders}
    roots = [f for f in _loader_roots(report) if f.source_location and id(f) not in placed]
    if not roots:
        return ""
    return "\n".join(["# Loader options", "", *_loader_lines(roots, plan)]).rstrip("\n") + "\n"


def _loader_roots(report: Report) -> list[NPlusOne]:
    """The N+1 findings whose rewrite is to be applied: those no other finding nests (a
    root's options load its nested relationships too)."""
    nested = {id(child) for f in report.orm.nplus1 for child in f.nested}
    return [f for f in report.orm.nplus1 if f.rewrite is not None and id(f) not in nested]


def _loader_lines(roots: list[NPlusOne], plan: _Plan) -> list[str]:
    why = {id(item.finding): item.reason for item in plan.loaders_left_out}
    lines: list[str] = []
    if not any(f.source_location for f in roots):
        lines += [
            "_Where the query is written is not known from the log: change the statement "
            "that reads the root class's rows._",
            "",
        ]
    for finding in roots:
        rewrite = finding.rewrite
        assert rewrite is not None  # _loader_roots keeps only those
        lines += [f"### `{finding.relationship_name}` -> `{finding.strategy}`", ""]
        if finding.source_location:
            lines += [f"Change the statement at `{finding.source_location}`.", ""]
            if id(finding) in why:
                lines += [f"Not patched: {why[id(finding)]}.", ""]
        if finding.location:
            lines += [f"The loop that lazy-loads is at `{finding.location}`.", ""]
        if rewrite.defined_at:
            lines += [f"Relationship declared at `{rewrite.defined_at}`.", ""]
        lines += _before_after(rewrite.imports, rewrite.before, rewrite.after)
    return lines


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
    #: sqlalchemy.orm names the loader options use (``selectinload``...).
    needed_orm: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _LeftOut:
    candidate: IndexCandidate
    model: ModelIndexSuggestion | None
    reason: str


@dataclass(frozen=True)
class _Loader:
    """An N+1 finding's loader option, placed in (or kept from) an application file."""

    finding: NPlusOne
    reason: str = ""


@dataclass
class _Plan:
    files: list[_FileChange] = field(default_factory=list)
    left_out: list[_LeftOut] = field(default_factory=list)
    loaders: list[_Loader] = field(default_factory=list)
    """Loader options the patch adds."""
    loaders_left_out: list[_Loader] = field(default_factory=list)
    """Findings with a source line whose option could not be placed, with why."""


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
    files: dict[str, _FileChange] = {}
    if models is not None:
        # Per class: its column changes and its __table_args__ entries, in report order.
        by_class: dict[str, tuple[MappedClass, list[IndexCandidate]]] = {}
        for suggestion in report.suggestions:
            candidate = suggestion.candidate
            mapped = models.for_table(candidate.table, candidate.schema)
            if mapped is None:
                plan.left_out.append(_LeftOut(candidate, None, "no class of your models maps it"))
                continue
            by_class.setdefault(mapped.qualified_table, (mapped, []))[1].append(candidate)
        for mapped, candidates in by_class.values():
            _plan_class(plan, files, models, mapped, candidates, base)
    for finding in _loader_roots(report):
        if finding.source_location:
            _plan_loader(plan, files, finding, base)
    for change in files.values():
        imports = [
            edit
            for module, names in (
                ("sqlalchemy", change.needed),
                ("sqlalchemy.orm", change.needed_orm),
            )
            if names and (edit := _import_edit(change, module, names)) is not None
        ]
        if len(imports) == 2 and imports[0].start == imports[1].start == imports[1].end + 1:
            # Two new lines at one place: one edit, in isort's order (sqlalchemy first).
            imports = [_Edit(imports[0].start, imports[0].end, imports[0].lines + imports[1].lines)]
        change.edits += imports
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


def _plan_loader(plan: _Plan, files: dict[str, _FileChange], finding: NPlusOne, base: Path) -> None:
    """Add the finding's loader option to the call that builds its parent query."""
    rewrite = finding.rewrite
    assert rewrite is not None and finding.source_location is not None

    def leave(why: str) -> None:
        plan.loaders_left_out.append(_Loader(finding, why))

    name, _, number = finding.source_location.rpartition(":")
    if not name or not number.isdigit():
        leave(f"{finding.source_location} is not a file and line")
        return
    line = int(number)
    path = (base / name).resolve()
    relative = os.path.relpath(path, base)
    if relative.startswith(".."):
        leave(f"{name} is outside {base}")
        return
    change = files.get(str(path))
    if change is None:
        try:
            text = path.read_bytes().decode("utf-8")
            ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as error:
            leave(f"cannot read {name}: {getattr(error, 'strerror', None) or error}")
            return
        change = _FileChange(path, Path(relative).as_posix(), _lines(text))
        files[str(path)] = change
    tree = ast.parse("".join(change.original))
    call = _query_call(tree, line, rewrite.root_class)
    if isinstance(call, str):
        leave(call)
        return
    end_line, end_col = call.end_lineno, call.end_col_offset
    if end_line is None or end_col is None:  # pragma: no cover - ast always sets them
        leave("its position in the file is unknown")
        return
    original = change.original[end_line - 1]
    raw = original.encode("utf-8")
    added = f".options({', '.join(rewrite.options)})".encode()
    edit = _Edit(end_line, end_line, [(raw[:end_col] + added + raw[end_col:]).decode("utf-8")])
    if _overlaps(change, edit):
        leave("another change already rewrites that line")
        return
    change.edits.append(edit)
    change.needed_orm.update(sorted({step.strategy for step in finding.path}))
    for child in _descendants(finding):
        change.needed_orm.update(step.strategy for step in child.path)
    plan.loaders.append(_Loader(finding))


def _descendants(finding: NPlusOne) -> list[NPlusOne]:
    found: list[NPlusOne] = []
    for child in finding.nested:
        found += [child, *_descendants(child)]
    return found


def _query_call(tree: ast.Module, line: int, root: str) -> ast.Call | str:
    """The ``select(Root)`` / ``.query(Root)`` call of the statement at ``line``, or of the
    variable that statement executes when it was assigned earlier in the same function;
    a reason when there is not exactly one."""
    statement, body = _statement_at(tree, line)
    if statement is None:
        return f"no statement at line {line}"
    calls = _root_calls(statement, root)
    if not calls:
        names = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}
        for earlier in reversed([s for s in body if s.lineno < statement.lineno]):
            targets = [_target(earlier)] if isinstance(earlier, ast.Assign | ast.AnnAssign) else []
            if any(t is not None and t in names for t in targets):
                calls = _root_calls(earlier, root)
                break
    if len(calls) != 1:
        found = "no" if not calls else "more than one"
        return f"line {line} builds {found} select({root}) or query({root}) the patch can extend"
    return calls[0]


def _statement_at(tree: ast.Module, line: int) -> tuple[ast.stmt | None, list[ast.stmt]]:
    """The innermost simple statement spanning ``line``, and the body list holding it."""
    best: tuple[ast.stmt | None, list[ast.stmt]] = (None, [])
    bodies: list[list[ast.stmt]] = [tree.body]
    while bodies:
        body = bodies.pop()
        for statement in body:
            end = statement.end_lineno or statement.lineno
            if not statement.lineno <= line <= end:
                continue
            inner = [
                value
                for key in ("body", "orelse", "finalbody", "handlers")
                for value in [getattr(statement, key, None)]
                if isinstance(value, list) and value
            ]
            blocks = [b for b in inner if all(isinstance(s, ast.stmt) for s in b)]
            blocks += [h.body for b in inner for h in b if isinstance(h, ast.ExceptHandler)]
            if isinstance(statement, ast.With | ast.AsyncWith) and statement.lineno == line:
                return statement, body  # the line of "with ...:" itself
            if any(s.lineno <= line <= (s.end_lineno or s.lineno) for b in blocks for s in b):
                bodies += blocks
            else:
                best = (statement, body)
    return best


def _root_calls(statement: ast.stmt, root: str) -> list[ast.Call]:
    """``select(Root, ...)``, ``sa.select(Root)``, ``session.query(Root, ...)`` in it."""
    found = []
    for node in ast.walk(statement):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if isinstance(func, ast.Attribute):
            name = func.attr
        if name not in ("select", "query"):
            continue
        first = node.args[0]
        named = first.id if isinstance(first, ast.Name) else None
        if isinstance(first, ast.Attribute):
            named = first.attr
        if named == root:
            found.append(node)
    return found


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


def _import_edit(change: _FileChange, module: str, needed: set[str]) -> _Edit | None:
    """Add the names of ``module`` the new code needs and the file lacks: to its
    single-line ``from <module> import ...``, else as a line of their own after its
    imports."""
    text = "".join(change.original)
    tree = ast.parse(text)
    newline = "\r\n" if "\r\n" in text else "\n"
    bound = _bound_names(tree)
    missing = sorted((n for n in needed if n not in bound), key=_sort_key)
    if not missing:
        return None
    for statement in tree.body:
        if (
            isinstance(statement, ast.ImportFrom)
            and statement.module == module
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
            new = f"from {module} import {', '.join(merged)}{rest}{newline}"
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
    line = f"from {module} import {', '.join(sorted(missing, key=_sort_key))}{newline}"
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
