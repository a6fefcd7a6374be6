"""What the atheris fuzz scripts share: the seed corpus, the libFuzzer options, the verdict.

A fuzz target passes when its input reads or is refused with an
:class:`~explainer.errors.ExplainerError` whose message is one line; any other exception
is a crash. libFuzzer stops at the first crash, and its fork mode cannot restart a Python
script, so by default a run keeps going instead: each distinct crash (exception type and
the explainer line that raised it) is printed once and its input saved under
``$TMPDIR/explainer-fuzz-crashes/<name>/``, with a ``crashes.txt`` summary.
``--stop-on-crash`` gives libFuzzer's own behaviour (stop, save ``crash-<sha1>``).

Seeds: the small samples in ``tests/fuzz/seeds/`` and, when it is there, the shared corpus
(``../shared/corpus``), cut into windows of lines so that each seed is small and the fuzzer
mutates many shapes instead of one large file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from explainer.errors import ExplainerError

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "seeds"
CORPUS = HERE.parents[1].parent / "shared" / "corpus"
WINDOW = 40  # lines per seed cut from a larger sample
MAX_LEN = 8192


def crash_dir(name: str) -> Path:
    directory = Path(tempfile.gettempdir(), "explainer-fuzz-crashes", name)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Verdict:
    """Runs a target on one input and judges the outcome (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.keep_going = "--stop-on-crash" not in sys.argv
        if not self.keep_going:
            sys.argv.remove("--stop-on-crash")
        self.directory = crash_dir(name)
        self.seen: set[str] = set()

    def run(self, target: Callable[[bytes], None], data: bytes) -> None:
        try:
            try:
                target(data)
            except ExplainerError as error:
                check_error(error)
        except Exception as exc:
            if not self.keep_going:
                raise
            self._record(exc, data)

    def _record(self, exc: Exception, data: bytes) -> None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "explainer" in f.filename]
        where = f"{frames[-1].filename.split('src/')[-1]}:{frames[-1].lineno}" if frames else "?"
        key = f"{type(exc).__name__} at {where}"
        if key in self.seen:
            return
        self.seen.add(key)
        digest = hashlib.sha1(data).hexdigest()
        (self.directory / f"crash-{digest}").write_bytes(data)
        line = f"{key}: {str(exc)[:200]!r} -> crash-{digest}"
        with open(self.directory / "crashes.txt", "a", encoding="utf-8") as summary:
            summary.write(line + "\n")
        print(f"\n=== NEW CRASH {line}", file=sys.stderr, flush=True)


def check_error(error: ExplainerError) -> None:
    """An expected refusal: still, its message must be one non-empty line."""
    message = str(error)
    if not message.strip() or "\n" in message:
        raise AssertionError(f"{type(error).__name__} message is not one line: {message!r}")


def windows(data: bytes, count: int = 4) -> Iterable[bytes]:
    """The whole of a small sample, or ``count`` windows of :data:`WINDOW` lines."""
    lines = data.splitlines(keepends=True)
    if len(lines) <= WINDOW and len(data) <= MAX_LEN:
        yield data
        return
    step = max(1, (len(lines) - WINDOW) // max(1, count - 1))
    for start in range(0, max(1, len(lines) - WINDOW + 1), step):
        yield b"".join(lines[start : start + WINDOW])[:MAX_LEN]


def write_seed_corpus(seeds: Iterable[bytes]) -> str:
    """A fresh directory holding the seeds, one file each (libFuzzer's first corpus)."""
    directory = tempfile.mkdtemp(prefix="explainer-fuzz-")
    for number, seed in enumerate(seeds):
        Path(directory, f"seed-{number:05d}").write_bytes(seed)
    return directory


def libfuzzer_argv(corpus: str, name: str) -> list[str]:
    """``sys.argv`` with the defaults this project's fuzz runs use, unless given:
    ``name.dict`` next to the script as the dictionary, crashes under the temp dir."""
    argv = list(sys.argv)
    given = " ".join(argv[1:])
    crashes = crash_dir(name)
    defaults = {
        "-max_len=": f"-max_len={MAX_LEN}",
        "-timeout=": "-timeout=10",  # one input taking this long is reported as a hang
        "-rss_limit_mb=": "-rss_limit_mb=4096",
        "-artifact_prefix=": f"-artifact_prefix={crashes}{os.sep}",
        "-print_final_stats=": "-print_final_stats=1",
        "-dict=": f"-dict={HERE / (name + '.dict')}",
    }
    argv.extend(value for flag, value in defaults.items() if flag not in given)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        argv.append(corpus)  # no corpus directory given: start from the seeds
    return argv
