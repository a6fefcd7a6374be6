"""Coverage-guided fuzzing of the TEXT plan parser with atheris (libFuzzer).

Run ``python tests/fuzz/fuzz_text_plan.py -max_total_time=600`` (``pip install atheris``).
Each input goes through ``parse_plan`` (as bytes: decoding, psql/pgAdmin cleaning, format
detection, then the parser of that format) and, decoded, straight through
``text_to_document`` and ``plan_from_document``. Every input must give a plan or a
PlanParseError of one line; anything else is a crash. Results: docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import atheris

with atheris.instrument_imports():
    from explainer.plan import parse_plan, plan_from_document, text_to_document
    from explainer.plan.parse import _unwrap_document

from _harness import CORPUS, SEEDS, Verdict, libfuzzer_argv, windows, write_seed_corpus

VERDICT = Verdict("text_plan")


def _parse_plan(data: bytes) -> None:
    parse_plan(data)


def _text_reader(data: bytes) -> None:
    plan_from_document(_unwrap_document(text_to_document(data.decode("utf-8", "replace"))))


def test_one_input(data: bytes) -> None:
    VERDICT.run(_parse_plan, data)
    VERDICT.run(_text_reader, data)


def _seeds() -> Iterator[bytes]:
    files = sorted(SEEDS.glob("plan_*.txt"))
    plans = CORPUS / "plans"
    if plans.is_dir():
        files += sorted(p for p in plans.glob("*.txt") if p.name[:2].isdigit())
    for path in files:
        yield from windows(path.read_bytes())


def main() -> None:
    corpus = write_seed_corpus(_seeds())
    atheris.Setup(libfuzzer_argv(corpus, "text_plan"), test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
