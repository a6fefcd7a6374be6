"""`explainer demo`: a throwaway server, the shop, the shipped log, a verified report."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture()
def private_tmpdir() -> Iterator[Path]:
    """A TMPDIR of the demo's own, so what it leaves behind can be seen.

    Under /tmp and world-traversable: as root the server runs as another user, which
    must be able to reach its data directory.
    """
    path = Path(tempfile.mkdtemp(prefix="explainer-demo-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def demo_env(tmpdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["TMPDIR"] = str(tmpdir)
    return env


def leftover_data_dirs(tmpdir: Path) -> list[Path]:
    return sorted(tmpdir.glob("explainer-pg-*"))


def test_demo_shows_a_measured_index_suggestion_and_cleans_up(private_tmpdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "explainer", "demo", "--scale", "0.2", "--format", "json"],
        capture_output=True, text=True, env=demo_env(private_tmpdir), timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["database"]["verify_method"] == "rollback"
    assert report["inputs"]["set_aside"] > 0  # BEGIN/COMMIT of the logged transactions
    # Every shape of the shipped log was analyzed without error.
    assert [q["error"] for q in report["queries"] if q["error"]] == []
    measured = [
        s for s in report["suggestions"]
        if s["evidence"]["method"] == "rollback" and s["evidence"]["after_ms"] is not None
    ]
    assert measured, report["suggestions"]
    for suggestion in measured:
        evidence = suggestion["evidence"]
        assert evidence["index_used"]
        assert evidence["after_ms"] * 2 <= evidence["before_ms"]
    tables = {s["table"] for s in report["suggestions"]}
    assert {"order_items", "customers"} <= tables
    assert leftover_data_dirs(private_tmpdir) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_demo_leaves_no_server_behind(
    private_tmpdir: Path, signum: signal.Signals
) -> None:
    # Run the CLI with Ctrl+C raising KeyboardInterrupt, as in a terminal (a background
    # job of a non-interactive shell starts with SIGINT ignored).
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from explainer.cli import main; sys.exit(main(['demo', '--scale', '0.3']))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=demo_env(private_tmpdir),
    )
    try:
        assert child.stderr is not None
        seen = ""
        while "loading the demo shop" not in seen:
            ready, _, _ = select.select([child.stderr], [], [], 60)
            assert ready, f"the demo did not start: {seen}"
            line = child.stderr.readline()
            assert line, f"the demo ended early: {seen}"
            seen += line
        assert len(leftover_data_dirs(private_tmpdir)) == 1
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert "Traceback" not in (child.stderr.read() if child.stderr else "")
    assert leftover_data_dirs(private_tmpdir) == []
