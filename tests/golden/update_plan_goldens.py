"""Write the golden file of every corpus plan (tests/golden/plans/<plan>.json).

Run it after a deliberate change to the parser or the rules, then read the diff: a golden
records what explainer says about a real plan (node count, total time, findings), so a
change in it is a change users will see. Files marked ``"hand_checked": true`` were checked
against the plan by a person; this script never rewrites their figures, it prints where the
current output disagrees so that the person can decide.

    .venv/bin/python tests/golden/update_plan_goldens.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from explainer.plan import parse_plan
from explainer.rules import run_rules

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1].parent / "shared" / "corpus" / "plans"
GOLDEN = HERE / "plans"


def observed(path: Path) -> dict[str, Any]:
    """What explainer says about one corpus plan, in the golden file's shape."""
    plan = parse_plan(path.read_bytes())
    total = plan.total_ms
    return {
        "file": path.name,
        "nodes": sum(1 for _ in plan.walk()),
        "analyzed": plan.analyzed,
        "total_ms": None if total is None else round(total, 3),
        "findings": [{"rule": f.rule, "node": f.node_path} for f in run_rules(plan)],
    }


def main() -> int:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    disagreements = 0
    for path in sorted(p for p in CORPUS.iterdir() if p.name[:2].isdigit()):
        target = GOLDEN / (path.name.split(".")[0] + ".json")
        current = observed(path)
        if target.exists():
            golden = json.loads(target.read_text())
            if golden.get("hand_checked"):
                for key in ("nodes", "analyzed", "total_ms", "findings"):
                    if golden.get(key) != current[key]:
                        disagreements += 1
                        was, now = golden.get(key), current[key]
                        print(f"{path.name}: {key} hand-checked {was!r}, now {now!r}")
                continue
            current = {**current, "notes": golden.get("notes", "")}
        current.setdefault("notes", "")
        current["hand_checked"] = False
        target.write_text(json.dumps(current, indent=2) + "\n")
    print(f"{disagreements} disagreement(s) with hand-checked goldens")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
