"""Write the artefacts of a report to a folder: what a team would otherwise write by hand.

``explainer analyze ... --export DIR`` calls this, and the TUI's export dialog will too, so
both write the same files:

* ``migration_add_indexes.py``: an Alembic revision building the suggestions
  (``migration_drop_indexes.py``, a separate revision, when there are removals);
* ``indexes.sql`` (``drop_indexes.sql``): the same as plain SQL for psql;
* ``schema.sql``: the schema lint's fixes (``Report.lint``), apart from the indexes
  because some rewrite a table under an ACCESS EXCLUSIVE lock;
* ``report.md`` and ``report.json``: the report, for the pull request and for tools;
* ``models.patch``: the model changes as a unified diff against the user's files, when
  they are known (``--models``), and, with the in-app capture, each N+1 loader option
  added where the application builds the parent query; else ``models_snippets.md``
  with the code to paste (which also holds the schema lint's model changes, with or
  without ``--models``).

Nothing is overwritten unless asked (``force``): an export folder may hold a revision
someone already edited, and a second run would silently replace it with a new id.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from explainer.errors import InputError
from explainer.lint.render import lint_script, lint_snippets
from explainer.render.alembic import add_indexes_revision, current_head, drop_indexes_revision
from explainer.render.json import render_json
from explainer.render.markdown import index_code, render_markdown
from explainer.render.patch import loader_snippets
from explainer.render.sql import index_script, removal_script
from explainer.report import Report

ADD_MIGRATION = "migration_add_indexes.py"
DROP_MIGRATION = "migration_drop_indexes.py"
ADD_SQL = "indexes.sql"
DROP_SQL = "drop_indexes.sql"
REPORT_MD = "report.md"
REPORT_JSON = "report.json"
MODELS_PATCH = "models.patch"
MODELS_SNIPPETS = "models_snippets.md"
SCHEMA_SQL = "schema.sql"

#: Every name an export may write: checked before the analysis runs, so a folder that
#: would refuse the export fails fast rather than after minutes of analysis.
ALL_FILES = (
    ADD_MIGRATION,
    DROP_MIGRATION,
    ADD_SQL,
    DROP_SQL,
    REPORT_MD,
    REPORT_JSON,
    MODELS_PATCH,
    MODELS_SNIPPETS,
    SCHEMA_SQL,
)


@dataclass(slots=True)
class ExportOptions:
    directory: Path
    #: The user's migrations folder (or alembic.ini): its head becomes ``down_revision``.
    alembic_dir: Path | None = None
    force: bool = False


@dataclass(slots=True)
class Exported:
    """What was written, in order, and the revision ids (for the user and for tests)."""

    files: list[Path] = field(default_factory=list)
    add_revision: str | None = None
    drop_revision: str | None = None
    down_revision: str | None = None


def check_writable(options: ExportOptions) -> None:
    """Refuse, in one line, when an export file already exists and ``force`` is off, or
    when the target is not a folder."""
    directory = options.directory
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--export {directory}: not a folder")
    if options.force:
        return
    existing = [name for name in ALL_FILES if (directory / name).exists()]
    if existing:
        raise InputError(
            f"--export {directory}: {', '.join(existing)} already there; "
            "use --force to overwrite, or another folder"
        )


def _model_patch() -> Callable[[Report], str | None] | None:
    """EXPORT-B's unified diff builder, when this installation has it."""
    # Imported by name: the module is optional, and mypy must pass without it too.
    try:
        patch = importlib.import_module("explainer.render.patch")
    except ImportError:
        return None
    builder = getattr(patch, "model_patch", None)
    return builder if callable(builder) else None


def _snippets(report: Report, *, indexes: bool = True) -> str | None:
    """The model changes to paste: the suggestions' indexes (unless ``models.patch`` has
    them) and the schema lint's changes (class names guessed from the tables)."""
    lines = ["# Model changes", ""]
    for suggestion in report.suggestions if indexes else []:
        candidate = suggestion.candidate
        lines += [f"## `{candidate.name}` on `{candidate.qualified_table}`", ""]
        lines += index_code(candidate, report.orm.user_models)
    lines += lint_snippets(report.lint, report.orm.user_models)
    return "\n".join(lines) if len(lines) > 2 else None


def render_export(report: Report, options: ExportOptions) -> tuple[dict[str, str], Exported]:
    """Every artefact's file name and text, without writing anything."""
    exported = Exported()
    head = current_head(options.alembic_dir) if options.alembic_dir is not None else None
    exported.down_revision = head
    files: dict[str, str] = {}
    add = add_indexes_revision(report, down_revision=head)
    if add is not None:
        files[ADD_MIGRATION] = add.text
        exported.add_revision = add.revision
    drop = drop_indexes_revision(report, down_revision=add.revision if add else head)
    if drop is not None:
        files[DROP_MIGRATION] = drop.text
        exported.drop_revision = drop.revision
    if report.suggestions:
        files[ADD_SQL] = index_script(report)
    if report.removals:
        files[DROP_SQL] = removal_script(report)
    if report.lint:
        files[SCHEMA_SQL] = lint_script(report.lint)
    files[REPORT_MD] = render_markdown(report)
    files[REPORT_JSON] = render_json(report)
    builder = _model_patch()
    patch = builder(report) if builder is not None else None
    if patch:
        files[MODELS_PATCH] = patch
    # Without --models a patch holds only loader options (in-app capture): indexes stay
    # snippets, and so do loader options the patch could not place.
    snippets = _snippets(report, indexes=not patch or report.orm.user_models is None)
    loaders = loader_snippets(report)
    if snippets is not None or loaders:
        files[MODELS_SNIPPETS] = "\n\n".join(t for t in (snippets, loaders) if t)
    return files, exported


def export_report(report: Report, options: ExportOptions) -> Exported:
    """Write the artefacts to ``options.directory`` (created when missing)."""
    check_writable(options)
    files, exported = render_export(report, options)
    try:
        options.directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = options.directory / name
            path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            exported.files.append(path)
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise InputError(f"cannot write to {options.directory}: {reason}") from exc
    return exported
