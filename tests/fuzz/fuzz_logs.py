"""Coverage-guided fuzzing of every log reader with atheris (libFuzzer).

Run ``python tests/fuzz/fuzz_logs.py -max_total_time=600`` (atheris: ``pip install
atheris``). The first byte of an input chooses the entry point, the rest is the input:
``read_input`` with the format detected or named (stderr, syslog, logplex, csvlog,
jsonlog, pg_stat_statements, SQLAlchemy, SQL), stderr with a ``log_line_prefix`` given
(the first line), the auto_explain body reader, both logged-parameter readers and the
byte-range splitter of parallel ingest. Every input must read, or be refused with an
ExplainerError of one line; anything else is a crash. Results: docs/reliability.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from explainer.capture import read_input
    from explainer.capture.auto_explain import parse_plan_message
    from explainer.capture.records import read_parameters
    from explainer.capture.split import read_range, split_log
    from explainer.capture.sqlalchemy_params import parse_parameters
    from explainer.capture.sqlalchemy_placeholders import to_dollar_placeholders

from _harness import CORPUS, SEEDS, Verdict, libfuzzer_argv, windows, write_seed_corpus

WORK = tempfile.mkdtemp(
    prefix="explainer-fuzz-logs-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
)


def _file(data: bytes, name: str = "input.log") -> str:
    path = os.path.join(WORK, name)
    Path(path).write_bytes(data)
    return path


def _read(name: str = "input.log", log_format: str | None = None) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        queries, stats = read_input(_file(data, name), log_format=log_format)
        assert stats.skipped == sum(stats.skip_reasons.values()), stats
        assert all(isinstance(query.sql, str) for query in queries)

    return run


def _with_prefix(data: bytes) -> None:
    prefix, _, log = data.partition(b"\n")
    read_input(_file(log), log_prefix=prefix.decode("utf-8", "replace"))


def _auto_explain(data: bytes) -> None:
    parse_plan_message(data.decode("utf-8", "replace"))


def _pg_parameters(data: bytes) -> None:
    read_parameters(data.decode("utf-8", "replace"))


def _sqlalchemy_parameters(data: bytes) -> None:
    sql, _, logged = data.decode("utf-8", "replace").partition("\n")
    to_dollar_placeholders(sql, parse_parameters(logged))


def _split(data: bytes) -> None:
    path = _file(data)
    ranges = split_log(path, 3)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data), ranges
    for start, end in ranges:
        for _ in read_range(path, start, end):
            pass


TARGETS: tuple[Callable[[bytes], None], ...] = (
    _read(),
    _read("input.csv"),
    _read(log_format="stderr"),
    _read(log_format="syslog"),
    _read(log_format="logplex"),
    _read(log_format="csvlog"),
    _read(log_format="jsonlog"),
    _read(log_format="pgss"),
    _read(log_format="sqlalchemy"),
    _read(log_format="sql"),
    _with_prefix,
    _auto_explain,
    _pg_parameters,
    _sqlalchemy_parameters,
    _split,
)

# Which target a seed file is for, by its name; every seed also goes to auto-detection.
_SEED_TARGETS = (
    ("sqlalchemy", 8),
    ("stat_statements", 7),
    ("pgss", 7),
    ("syslog", 3),
    ("logplex", 4),
    ("heroku", 4),
    ("csv", 5),
    ("json", 6),
    (".sql", 9),
    ("stderr", 2),
    ("auto_explain", 11),
)


VERDICT = Verdict("logs")


def test_one_input(data: bytes) -> None:
    if data:
        VERDICT.run(TARGETS[data[0] % len(TARGETS)], data[1:])


def _seeds() -> Iterator[bytes]:
    files = sorted(p for p in SEEDS.iterdir() if not p.name.startswith("plan_"))
    logs = CORPUS / "logs"
    if logs.is_dir():
        files += sorted(p for p in logs.rglob("*") if p.is_file() and p.suffix != ".md")
    for path in files:
        chosen = [0] + [target for word, target in _SEED_TARGETS if word in path.name]
        for window in windows(path.read_bytes()):
            for target in chosen[:2]:
                yield bytes([target]) + window
    yield bytes([10]) + b"%m [%p] %q%u@%d \n" + (SEEDS / "log_stderr_extended.log").read_bytes()
    yield bytes([12]) + b"$1 = '42', $2 = 'it''s', $3 = NULL"
    yield bytes([13]) + (
        b"SELECT %(a)s, %(b)s, $1\n{'a': 1, 'b': datetime.date(2024, 1, 2), 'c': [b'x']}"
    )
    yield bytes([14]) + (SEEDS / "log_stderr_extended.log").read_bytes()


def main() -> None:
    corpus = write_seed_corpus(_seeds())
    atheris.Setup(libfuzzer_argv(corpus, "logs"), test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
