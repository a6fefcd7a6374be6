"""`explainer workload`: the heaviest shapes of a log, with no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explainer.capture.split import split_log
from explainer.cli import main
from explainer.workload import parallel

DEMO_LOG = Path(__file__).resolve().parents[1] / "sample_queries" / "shop.log"


def test_json_lists_shapes_heaviest_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "--log", str(DEMO_LOG), "--format", "json", "--top", "3"]) == 0
    document = json.loads(capsys.readouterr().out)
    # shop.log: 69 statements (grep -c "duration: .* statement:"), 13 shapes besides the
    # BEGIN/COMMIT pairs of two logged transactions.
    assert document["calls"] == 69
    assert document["shapes"] == 13
    assert document["utility"] == {"shapes": 2, "calls": 4}
    totals = [g["total_ms"] for g in document["groups"]]
    assert len(totals) == 3 and totals == sorted(totals, reverse=True)
    heaviest = document["groups"][0]
    assert heaviest["sql"].startswith("SELECT i.product_id")
    assert heaviest["calls"] == 8
    assert heaviest["total_ms"] == pytest.approx(370.9, abs=0.1)


def test_sort_by_calls(capsys: pytest.CaptureFixture[str]) -> None:
    main(["workload", "--log", str(DEMO_LOG), "--format", "json", "--sort", "calls"])
    calls = [g["calls"] for g in json.loads(capsys.readouterr().out)["groups"]]
    assert calls == sorted(calls, reverse=True)


def test_text_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "--log", str(DEMO_LOG), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "69 statements in 13 shapes" in out
    assert "By total time" in out and "By calls" in out


def test_quoted_glob_is_expanded(capsys: pytest.CaptureFixture[str]) -> None:
    pattern = str(DEMO_LOG.parent / "shop.*")  # shop.log and shop.sql
    assert main(["workload", "--log", pattern, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["inputs"]["sources"]) == 2


def test_a_glob_matching_nothing_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "--log", "/nonexistent/*.log"]) == 2
    assert capsys.readouterr().err.strip() == "explainer: error: no file matches /nonexistent/*.log"


def test_jobs_give_the_same_workload(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A log large enough to be split: the demo log repeated, with distinct pids.
    text = DEMO_LOG.read_text()
    big = tmp_path / "big.log"
    with big.open("w") as out:
        for copy in range(400):
            out.write(text.replace(" [", f" [{copy}"))
    main(["workload", "--log", str(big), "--format", "json", "--top", "50"])
    single = json.loads(capsys.readouterr().out)
    # Split pieces of 1 MB (16 MB by default) so that this 5 MB log is read by 2 processes.
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_JOB", 1024 * 1024)
    ranges: list[tuple[int, int]] = []

    def recording_split(path: str, parts: int) -> list[tuple[int, int]]:
        ranges.extend(split_log(path, parts))
        return ranges

    monkeypatch.setattr(parallel, "split_log", recording_split)
    main(["workload", "--log", str(big), "--format", "json", "--top", "50", "--jobs", "2"])
    assert len(ranges) == 2
    split = json.loads(capsys.readouterr().out)
    assert split["calls"] == single["calls"] == 69 * 400
    assert {g["id"]: g["calls"] for g in split["groups"]} == {
        g["id"]: g["calls"] for g in single["groups"]
    }
