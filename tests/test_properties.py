"""Bad input never crashes: every log reader, the SQL splitter and every plan parser, fed
random and mutated input by hypothesis.

The promise (docs/reliability.md): whatever the bytes, a reader reads them, counting what
it skips with a reason, or refuses them with an :class:`ExplainerError` whose message is
one line. Any other exception is a bug, and so is an input that takes more than
:data:`HANG_SECONDS` (a hang). The inputs:

- mutations of real samples: ``tests/fuzz/seeds/`` (always there) and, when ``../shared``
  is present, the shared corpus. A window of lines is cut from a sample, then truncated,
  lines deleted, duplicated, swapped or shuffled, bytes flipped, quotes, tabs, NULs, CRs,
  log and plan keywords or invalid UTF-8 inserted, numbers made huge or malformed, runs of
  brackets inserted and whole documents nested thousands deep;
- token soup (log and plan keywords in random order) and raw random bytes.

Each test runs :data:`CASES` examples (10,000; ``EXPLAINER_PROPERTY_CASES`` changes it for
a longer hunt), derandomized so that every CI run tries the same cases. Every crash these
tests or the fuzzers (``tests/fuzz/``) found is kept as an ``@example`` of the test that
reaches its code, with the one-line cause next to it.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import random
import re
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from explainer.capture import FORMATS, CapturedQuery, CaptureStats, read_input, read_sql_text
from explainer.capture.auto_explain import parse_plan_message
from explainer.capture.pglog import PgLogReader
from explainer.capture.records import read_parameters
from explainer.capture.split import read_range, split_log
from explainer.capture.sqlalchemy_params import parse_parameters
from explainer.capture.sqlalchemy_placeholders import to_dollar_placeholders
from explainer.errors import ExplainerError
from explainer.plan import Plan, parse_json_plan, parse_plan, plan_from_document
from explainer.plan.labels import node_label
from explainer.plan.parse import _unwrap_document
from explainer.plan.structured import xml_to_document, yaml_to_document
from explainer.plan.text import text_to_document

CASES = int(os.environ.get("EXPLAINER_PROPERTY_CASES", "10000"))
#: For the tests of pieces every reader test reaches anyway (prefixes, detection of any
#: file, parameter lists, the splitter of parallel ingest): a fifth, to keep CI short.
SOME_CASES = max(1, CASES // 5)
HANG_SECONDS = 10
SETTINGS = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    database=None,
)
SOME = settings(SETTINGS, max_examples=SOME_CASES)

SEEDS = Path(__file__).resolve().parent / "fuzz" / "seeds"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
MAX_SEED = 40_000  # bytes: larger samples would make 10,000 cases slow, not more thorough
MAX_INPUT = 2_000_000  # bytes: mutations stop growing an input there

# -- samples ------------------------------------------------------------------------------

# What a sample is, by its file name (first match wins). Samples of no kind (MySQL slow
# logs, say) are still used by the tests that take any input.
_KINDS = (
    ("auto_explain", "auto_explain"),
    ("sqlalchemy", "sqlalchemy"),
    ("stat_statements|pgss", "pgss"),
    ("syslog", "syslog"),
    ("logplex|heroku", "logplex"),
    (r"csvlog|\.csv", "csvlog"),
    (r"json", "jsonlog"),
    (r"\.sql$", "sql"),
    (r"stderr|pgbadger|dexter__queries\.log|shop\.log", "stderr"),
)
_PLAN_KINDS = (("yaml", "yaml"), ("xml", "xml"), ("json", "json"), ("", "text"))


def _log_kind(name: str) -> str:
    return next((kind for pattern, kind in _KINDS if re.search(pattern, name)), "other")


def _plan_kind(name: str) -> str:
    return next(kind for pattern, kind in _PLAN_KINDS if pattern in name)


def _samples() -> tuple[dict[str, list[bytes]], dict[str, list[bytes]]]:
    """(log samples, plan samples), by kind."""
    logs: dict[str, list[bytes]] = {}
    plans: dict[str, list[bytes]] = {}
    files = sorted(SEEDS.iterdir())
    if CORPUS.is_dir():
        files += sorted(
            path
            for path in CORPUS.rglob("*")
            if path.is_file() and path.suffix != ".md" and path.stat().st_size <= MAX_SEED
        )
    for path in files:
        data = path.read_bytes()
        if path.name.startswith("plan_") or path.parent.name == "plans":
            plans.setdefault(_plan_kind(path.name), []).append(data)
        else:
            logs.setdefault(_log_kind(path.name), []).append(data)
    return logs, plans


LOGS, PLANS = _samples()
ALL_LOGS = [sample for samples in LOGS.values() for sample in samples]
ALL_PLANS = [sample for samples in PLANS.values() for sample in samples]

# -- mutations ----------------------------------------------------------------------------

TOKENS = (
    *(bytes([b]) for b in b"\"'\t\n\r\x00\\;,{}[]<>:()|+-*&!?$%#=."),
    b"\r\n",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    "é".encode(),
    "²".encode(),
    "\u2028".encode(),
    "│".encode(),
    b"\xe2\x80",
    b"$$",
    b"$a$",
    b"/*",
    b"*/",
    b"--",
    b"E'",
    b"\\.",
    b"\\g",
    b"  ",
    b"\n\t",
    b"\n  ",
    b"$1",
    b"$99999",
    b"%(x)s",
    b"%s",
    b"%%",
    b"?",
    b"LOG:  ",
    b"ERROR:  ",
    b"DETAIL:  ",
    b"STATEMENT:  ",
    b"duration: 1.5 ms  ",
    b"statement: ",
    b"execute <unnamed>: ",
    b"plan:\n",
    b"parameters: $1 = '",
    b"', $2 = ",
    b"[1-2] ",
    b"#011",
    b"Query Text: ",
    b"2026-11-22 01:33:57.436 UTC [16620] ",
    b'{"message":"',
    b'"error_severity":"LOG"',
    b'"\\u0000"',
    b'"\\ud800"',
    b'""',
    b"INFO sqlalchemy.engine.Engine ",
    b"[generated in 0.1s] ",
    b"datetime.date(2024, 1, ",
    b"Decimal('",
    b"b'\\x",
    b" ... 1 parameters truncated ... ",
    b"->  ",
    b"  (cost=",
    b"(actual time=",
    b"rows=",
    b"loops=",
    b"(never executed)",
    b"Buffers: shared hit=",
    b"Memory Usage: ",
    b"kB",
    b"Workers Launched: ",
    b"InitPlan 1 (returns $0)",
    b"SubPlan 1",
    b"Plan:",
    b"Node Type: ",
    b"- ",
    b"&a ",
    b"*a",
    b"!!binary ",
    b"!!python/object:x ",
    b'"Plan": ',
    b'"Plans": [',
    b'"Node Type": "Result"',
    b'"Actual Rows": ',
    b"<Plan>",
    b"</Plan>",
    b"<Plans>",
    b"<Node-Type>",
    b"&amp;",
    b"&#0;",
    b"<![CDATA[",
    b"<!DOCTYPE x>",
    b"QUERY PLAN",
    b"(1 row)",
    b"----------",
    b"NaN",
    b"Infinity",
    b"1e999",
    b"-1",
)
NUMBERS = (
    b"9" * 5000,
    b"1" + b"0" * 400,
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"-0",
    b"1e-400",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1.2.3",
    b"1..2",
    b"0x10",
    "٣".encode(),
    "²".encode(),
    b"1_000",
)
WORDS = (b"SELECT ", b"FROM ", b"WHERE ", b"x", b"t", b"1", b"0.5", b" ", b"\n", b"=")


def _nest(data: bytes, kind: str, depth: int) -> bytes:
    """``data`` inside ``depth`` levels of arrays, plan nodes, XML plans or TEXT nodes."""
    if kind == "json":
        return b"[" * depth + data + b"]" * depth
    if kind == "plan":
        node = b'{"Node Type": "Result", "Plans": ['
        return b'[{"Plan": ' + node * depth + data + b"]}" * depth + b"}]"
    if kind == "xml":
        node = b"<Plan><Node-Type>Result</Node-Type><Plans>"
        closing = b"</Plans></Plan>" * depth
        return b"<explain><Query>" + node * depth + data + closing + b"</Query></explain>"
    depth = min(depth, 1000)  # TEXT indents each level: keep the input at a few MB
    node = b"->  Result  (cost=0.00..0.01 rows=1 width=4)\n"
    lines = [b"Result  (cost=0.00..0.01 rows=1 width=4)\n"]
    lines += [b"  " * level + node for level in range(1, depth)]
    return b"".join(lines) + data


def _deep(rng: random.Random) -> int:
    """A count from 2 to 5000, small ones far more often (log-uniform)."""
    return int(2 ** rng.uniform(1, 12.3))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` after up to six random mutations (see the module docstring)."""
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4, 6))):
        at = rng.randint(0, len(data))
        lines = data.splitlines(keepends=True) or [b""]
        line = rng.randrange(len(lines))
        operation = rng.randrange(20)
        if operation == 0:
            data = data[:at]
        elif operation == 1:
            data = b"".join(lines[:line] + lines[line + 1 :])
        elif operation == 2:
            # At most 1000 copies: a plan with thousands of InitPlans all referenced by
            # thousands of nodes is quadratic (seconds), and no plan has that many.
            copies = min(_deep(rng), 1000, MAX_INPUT // (len(lines[line]) + 1) + 1)
            data = b"".join(lines[:line] + [lines[line]] * copies + lines[line:])
        elif operation == 3:
            other = rng.randrange(len(lines))
            lines[line], lines[other] = lines[other], lines[line]
            data = b"".join(lines)
        elif operation == 4:
            rng.shuffle(lines)
            data = b"".join(lines)
        elif operation == 5:
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        elif operation == 6:
            data = data[:at] + rng.choice(TOKENS) * _deep(rng) + data[at:]
        elif operation == 7:
            digits = re.compile(rb"\d+").search(data, at)
            start, end = (digits.start(), digits.end()) if digits else (at, at)
            data = data[:start] + rng.choice(NUMBERS) + data[end:]
        elif operation == 8 and rng.random() < 0.2:
            data = _nest(data, rng.choice(("json", "plan", "xml", "text")), _deep(rng))
        else:  # the most useful mutation: one token somewhere
            data = data[:at] + rng.choice(TOKENS) + data[at:]
        data = data[:MAX_INPUT]
    return data


def _mutant(samples: list[bytes], number: int, whole: bool) -> bytes:
    """A window of lines of one sample (often all of it when ``whole``), mutated; all
    chosen by the seed ``number``. Hypothesis draws one number per example, which is
    cheap, and prints a failing input as ``_mutant(samples, number, whole)``: replay it
    with the samples of the test (``LOGS``/``PLANS``), then make it an ``@example``."""
    rng = random.Random(number)
    sample = rng.choice(samples)
    if not (whole and rng.random() < 0.3):
        lines = sample.splitlines(keepends=True)
        start = rng.randrange(max(1, len(lines)))
        sample = b"".join(lines[start : start + rng.randint(1, 30)])
    return mutate(sample, rng)


def _soup(number: int) -> bytes:
    rng = random.Random(number)
    return b"".join(rng.choice(TOKENS + WORDS) for _ in range(rng.randint(0, 200)))


_SEED = st.integers(0, 2**64)
_RANDOM = st.one_of(
    _SEED.map(_soup), st.binary(max_size=1000), st.text(max_size=300).map(str.encode)
)


def inputs(
    samples: list[bytes], others: list[bytes], whole: bool = False
) -> st.SearchStrategy[bytes]:
    """Mostly mutations of ``samples``; some of ``others`` (other kinds) and random input."""
    mine = _SEED.map(lambda number: _mutant(samples or others, number, whole))
    theirs = _SEED.map(lambda number: _mutant(others, number, whole))
    return st.one_of(mine, mine, mine, mine, theirs, _RANDOM)


def log_inputs(*kinds: str) -> st.SearchStrategy[bytes]:
    return inputs([s for kind in kinds for s in LOGS.get(kind, [])], ALL_LOGS)


def plan_inputs(*kinds: str) -> st.SearchStrategy[bytes]:
    return inputs([s for kind in kinds for s in PLANS.get(kind, [])], ALL_PLANS, whole=True)


# -- the verdict --------------------------------------------------------------------------


class Hang(Exception):
    """An input that took longer than HANG_SECONDS (no reader catches Exception broadly)."""


@contextmanager
def bounded() -> Iterator[None]:
    """Fail the example if the code inside runs longer than :data:`HANG_SECONDS`."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no result after {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_refusal(error: ExplainerError) -> None:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert "\n" not in message, f"{type(error).__name__} message is not one line: {message!r}"


def check_read(queries: list[CapturedQuery], stats: CaptureStats) -> None:
    assert stats.skipped == sum(stats.skip_reasons.values()), stats
    assert all(isinstance(query.sql, str) and query.sql.strip() for query in queries)


@contextmanager
def reads_or_refuses() -> Iterator[None]:
    """The block either completes, or raises an ExplainerError of one line, in bounded time."""
    try:
        with bounded():
            yield
    except ExplainerError as error:
        check_refusal(error)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Where inputs that must be files go: in memory when the machine has /dev/shm, since
    opening a file on disk cost more than reading it."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="explainer-properties-", dir=shm) as directory:
        yield Path(directory)


def lines_of(data: bytes) -> list[str]:
    """The lines of ``data`` as ``read_input`` reads a file: bad UTF-8 replaced, ``\\n`` only."""
    return list(
        io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="\n")
    )


_BY_ALIAS = {alias: entry for entry in FORMATS for alias in entry.aliases}


def read_format(alias: str, data: bytes, prefix: str | None = None) -> None:
    """``data`` read by the :data:`~explainer.capture.FORMATS` entry ``alias`` names, as
    ``read_input(log_format=alias)`` does after opening the file."""
    read_stream = _BY_ALIAS[alias].read_stream
    assert read_stream is not None
    with reads_or_refuses():
        queries, stats = read_stream(lines_of(data), "<fuzz>", prefix)
        check_read(list(queries), stats)


def read_file(workdir: Path, data: bytes, name: str, prefix: str | None = None) -> None:
    """``data`` as a file given to ``read_input``, its format detected."""
    path = workdir / name
    path.write_bytes(data)
    with reads_or_refuses():
        check_read(*read_input(str(path), log_prefix=prefix))


# -- log readers --------------------------------------------------------------------------

SERVER_LOGS = {
    "stderr": ("stderr", "auto_explain"),
    "syslog": ("syslog",),
    "logplex": ("logplex",),
    "csvlog": ("csvlog", "auto_explain"),
    "jsonlog": ("jsonlog", "auto_explain"),
}


def _server_log_test(log_format: str, *regressions: bytes) -> Callable[[bytes], None]:
    """One test per server-log format, read as ``--log-format`` names it."""

    def test(data: bytes) -> None:
        read_format(log_format, data)

    test.__name__ = f"test_{log_format}_reader_never_crashes"
    for regression in regressions:
        test = example(data=regression)(test)
    return SETTINGS(given(data=log_inputs(*SERVER_LOGS[log_format]))(test))


_JSONLOG_RECORD = (
    b'{"timestamp":"2026-11-21 23:46:17.142 UTC","pid":1,"error_severity":"LOG",'
    b'"message":"duration: 1.0 ms  statement: SELECT 1"}\n'
)

_STDERR_ENTRY = b"2026-11-22 01:33:57.436 UTC [16620] app@shop "

test_stderr_reader_never_crashes = _server_log_test(
    "stderr",
    # A hang: range(1, $n + 1) for $99999999999 in a parameters DETAIL (records.py; found
    # by these tests and by fuzz_logs.py).
    _STDERR_ENTRY
    + b"LOG:  duration: 1.0 ms  execute <unnamed>: SELECT $1\n"
    + _STDERR_ENTRY
    + b"DETAIL:  parameters: $1 = '1', $99999999999 = '2'\n",
)
test_syslog_reader_never_crashes = _server_log_test("syslog")
test_logplex_reader_never_crashes = _server_log_test(
    "logplex",
    # A hang: the user@db regex tried from each character of a 100 kB word (prefix.py).
    b"2019-03-14T00:22:57+00:00 app[postgres.4883]: [GREEN] [16-1]  sql_error_code = "
    + b"x" * 100_000
    + b" LOG:  statement: SELECT 1\n",
)
test_csvlog_reader_never_crashes = _server_log_test("csvlog")
test_jsonlog_reader_never_crashes = _server_log_test(
    "jsonlog",
    # RecursionError from json.loads: a line nested 100,000 deep (jsonlog.py).
    _JSONLOG_RECORD + b"[" * 100_000 + b"\n",
)

_PREFIXES = st.one_of(
    st.sampled_from(
        (
            "%m [%p] ",
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
            "%m %q%u@%d ",
            "%x%v%c%s%e%i%r%b%n%Q ",
            "%m\t%p\t",
            "[%p]",
            "%",
            "%%",
            "",
            " ",
            "(%u",
            "%p)",
        )
    ),
    st.text(max_size=30),
)


@SOME
@given(data=log_inputs("stderr", "auto_explain", "syslog"), prefix=_PREFIXES)
def test_stderr_reader_with_any_prefix_never_crashes(data: bytes, prefix: str) -> None:
    """``--log-prefix``: any text as the server's ``log_line_prefix``, on any log."""
    with reads_or_refuses():
        reader = PgLogReader(lines_of(data), log_prefix=prefix)
        check_read(list(reader), reader.stats)


@SETTINGS
@given(data=log_inputs("auto_explain"))
# RecursionError from json.loads: a JSON plan body nested 100,000 deep (auto_explain.py).
@example(data=b'plan: {"Query Text": "x", "Plan": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
def test_auto_explain_reader_never_crashes(data: bytes) -> None:
    """The body of an auto_explain entry read directly, and logs holding such entries."""
    text = data.decode("utf-8", "replace")
    with bounded():
        found = parse_plan_message(text.partition("plan:")[2] or text)
    assert found is None or isinstance(found[0], str)
    with reads_or_refuses():
        reader = PgLogReader(lines_of(data))
        check_read(list(reader), reader.stats)


@SETTINGS
@given(data=log_inputs("pgss"))
# OverflowError: int(float("inf")) for the calls column (pgss.py; found by fuzz_logs.py).
@example(data=b"queryid,calls,total_exec_time,query\n1,inf,1.0,SELECT 1\n")
def test_pg_stat_statements_reader_never_crashes(data: bytes) -> None:
    read_format("pgss", data)


@SETTINGS
@given(data=log_inputs("sqlalchemy"))
def test_sqlalchemy_reader_never_crashes(data: bytes) -> None:
    read_format("sqlalchemy", data)


@SETTINGS
@given(data=log_inputs("sql"))
def test_sql_splitter_never_crashes(data: bytes) -> None:
    """What ``read_input`` does with SQL (a ``.sql`` file, a paste, stdin)."""
    with bounded():
        queries, stats = read_sql_text(data.decode("utf-8", "replace"))
    check_read(queries, stats)
    assert stats.queries == len(queries)


@SOME
@given(
    data=inputs(ALL_LOGS, ALL_PLANS),
    name=st.sampled_from(("in.log", "in.csv", "in.sql", "in.gz")),
)
def test_any_file_is_read_or_refused(workdir: Path, data: bytes, name: str) -> None:
    """``read_input`` on a file: format detection on anything, compressed or not (a
    truncated .gz included)."""
    if name == "in.gz":
        data = gzip.compress(data)[: len(data) % 97 or None]
    read_file(workdir, data, name)


_VALUE_TOKENS = (b"$1 = ", b"'a'", b"''", b"NULL", b", ", b"{'a': ", b"(1, ", b"[", b"]")


def _values(number: int) -> bytes:
    rng = random.Random(number)
    return b"".join(rng.choice(TOKENS + _VALUE_TOKENS) for _ in range(rng.randint(0, 60)))


_PARAMETERS = st.one_of(log_inputs("stderr", "csvlog", "jsonlog", "sqlalchemy"), _SEED.map(_values))


@SOME
@given(data=_PARAMETERS)
@example(data=b"parameters: $1 = 'a', $99999999999 = 'b'")  # the hang above
# A hang: "... displaying N of M ..." searched from each of 100,000 spaces (sqlalchemy_params).
@example(data=b"\n[(1,), " + b" " * 100_000 + b"(2,)]")
@example(data=b"parameters: $2 = 'a', $" + b"9" * 5000 + b" = 'b'")  # int(): 4300+ digits
def test_logged_parameters_never_crash(data: bytes) -> None:
    """``DETAIL: parameters:`` of the server, and SQLAlchemy's parameter reprs with the
    statement they go with (placeholders rewritten to ``$n``)."""
    text = data.decode("utf-8", "replace")
    detail = text.partition("parameters: ")[2] or text
    sql, _, logged = text.partition("\n")
    with bounded():
        values, _complete = read_parameters(detail)
        assert all(value is None or isinstance(value, str) for value in values)
        to_dollar_placeholders(sql, parse_parameters(logged))


@SOME
@given(data=log_inputs("stderr", "auto_explain"), parts=st.integers(1, 8))
def test_log_splitter_never_crashes(workdir: Path, data: bytes, parts: int) -> None:
    """The byte ranges of parallel ingest cover the file, and each range reads."""
    path = workdir / "split.log"
    path.write_bytes(data)
    with bounded():
        ranges = split_log(path, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        for start, end in ranges:
            for _ in read_range(path, start, end):
                pass


# -- plan parsers -------------------------------------------------------------------------


def check_plan(plan: Plan) -> None:
    """A plan that parsed can be walked and every node named (what every renderer does)."""
    for node in plan.walk():
        assert node_label(node)


@contextmanager
def parses_or_refuses() -> Iterator[None]:
    with reads_or_refuses():
        yield


_NODE = b"Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n"
_RESULT = b"Result  (cost=0.00..0.01 rows=1 width=4)\n"
# Hangs, each more than HANG_SECONDS before its fix and well under one second after.
# Cleaning a paste: regexes quadratic on a run of spaces (source.py; 60+ s).
WIDE_PASTE = (b"x" + b" " * 20_000 + b"y\n") * 20 + _NODE
# TEXT plan 1000 levels deep: the same in text.py's node-line regexes (20 s).
DEEP_TEXT = _nest(b"", "text", 1000)
# 16,000 children of one node: counting the earlier siblings of each (text.py; 20 s).
WIDE_TEXT = b"Append  (cost=0.00..0.01 rows=1 width=4)\n" + (b"  ->  " + _RESULT) * 16_000
# A JIT timing of one 100 kB word: the timing regex tried from each character (text.py).
WIDE_JIT = _RESULT + b"JIT:\n  Functions: 1\n  Timing: " + b"x" * 100_000 + b"\n"
# 5,000 CTEs under one node: the whole subtree walked for each (parse.py; 12 s).
MANY_CTES = b"Append (actual time=1.0..2.0 rows=3 loops=1)\n  CTE c\n" + (
    b"    ->  Append (actual time=1.0..2.0 rows=2 loops=1)\n" * 5000
)
# A node line cut inside an unclosed quote, then 4,000 wrapped pieces: the open
# parentheses were counted over the whole glued line again for each piece (text.py;
# quadratic: a 160 kB paste of this kind took 13 s on a slow machine, this one ~1 min).
OPEN_QUOTE = b"Subquery Scan s  (cost=1.00.'.2.00 rows=1 width=4) (actual\n" + (
    b" " + b"x" * 150 + b"\n"
) * 4000
# Crashes of the TEXT reader (text.py).
TEXT_CRASHES = (
    # ValueError: float("1.2.3") from the digits of a Memory Usage without "kB".
    b"Hash  (cost=0.00..1.00 rows=1 width=4)\n  Buckets: 1024  Batches: 1  Memory Usage: 1.2.3\n",
    # ValueError: int() of a mangled value (found by fuzz_text_plan.py).
    b"Memoize  (cost=0.00..1.00 rows=1 width=4)\n  Hits: 2  Evi\x0ctions: 0\n",
    # ValueError: int() refuses 4300+ digits.
    b"Seq Scan on t  (cost=0.00..1.00 rows=" + b"9" * 5000 + b" width=4)\n",
    # ValueError: "²".isdigit() is true, int("²") fails.
    _NODE + "  Buffers: shared hit=²\n".encode(),
    # AttributeError: a "Plans:" (or "Workers:") line set the list of children (workers)
    # to text, and the next child was added to it (found by fuzz_text_plan.py).
    _NODE + b"  Plans: x\n  ->  " + _NODE,
    b"Gather  (cost=0.00..1.00 rows=1 width=4)\n  Workers: x\n"
    b"  Worker 0:  actual time=1.0..2.0 rows=1 loops=1\n",
)
# YAML: a control character's error message spanning two lines (found by
# fuzz_text_plan.py); ValueError from PyYAML's int constructor on 4300+ digits.
YAML_CRASHES = (
    b'- Plan:\n    Node Type: "Result"\x15\n',
    b'- Plan:\n    Node Type: "Result"\n    Plan Rows: ' + b"9" * 5000 + b"\n",
)
# XML: ValueError, int() of 4300+ digits; RecursionError, 2000 nested plans.
XML_CRASHES = (
    b"<explain><Query><Plan><Node-Type>Result</Node-Type><Plan-Rows>"
    + b"9" * 5000
    + b"</Plan-Rows></Plan></Query></explain>",
    _nest(b"", "xml", 2000),
)
# JSON: ValueError, json.loads refuses 4300+ digits (not a JSONDecodeError);
# OverflowError, float() of a 401-digit integer.
JSON_CRASHES = (
    b'{"Plan": {"Node Type": "Result", "Plan Rows": ' + b"9" * 5000 + b"}}",
    b'{"Plan": {"Node Type": "Result", "Plan Rows": 1' + b"0" * 400 + b"}}",
)


def _examples(*cases: bytes) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for case in cases:
            test = example(data=case)(test)
        return test

    return decorate


@SETTINGS
@given(data=plan_inputs("text", "json", "yaml", "xml"))
@_examples(WIDE_PASTE, DEEP_TEXT, *TEXT_CRASHES, *YAML_CRASHES, *XML_CRASHES, *JSON_CRASHES)
def test_parse_plan_never_crashes(data: bytes) -> None:
    """``parse_plan`` (what ``explainer plan`` and the workbench call) on any paste, given
    as bytes (a file) so that decoding is tried too."""
    with parses_or_refuses():
        check_plan(parse_plan(data))


@SETTINGS
@given(data=plan_inputs("json"))
@_examples(*JSON_CRASHES)
def test_json_plan_parser_never_crashes(data: bytes) -> None:
    with parses_or_refuses():
        check_plan(parse_json_plan(data))


@SETTINGS
@given(data=plan_inputs("text"))
@_examples(DEEP_TEXT, WIDE_TEXT, WIDE_JIT, MANY_CTES, OPEN_QUOTE, *TEXT_CRASHES)
def test_text_plan_parser_never_crashes(data: bytes) -> None:
    with parses_or_refuses():
        check_plan(
            plan_from_document(_unwrap_document(text_to_document(data.decode("utf-8", "replace"))))
        )


@SETTINGS
@given(data=plan_inputs("yaml"))
@_examples(*YAML_CRASHES)
def test_yaml_plan_parser_never_crashes(data: bytes) -> None:
    with parses_or_refuses():
        check_plan(
            plan_from_document(_unwrap_document(yaml_to_document(data.decode("utf-8", "replace"))))
        )


@SETTINGS
@given(data=plan_inputs("xml"))
@_examples(*XML_CRASHES)
def test_xml_plan_parser_never_crashes(data: bytes) -> None:
    with parses_or_refuses():
        check_plan(
            plan_from_document(_unwrap_document(xml_to_document(data.decode("utf-8", "replace"))))
        )
