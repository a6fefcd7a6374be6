"""Write the README's screenshot of the workbench: docs/images/query-screen.svg.

The Query screen of ``explainer demo``'s heaviest statement, drawn by Textual's own
screenshot feature (``App.save_screenshot``) from the real app at 140x42. The data is
fixed, so the picture only changes when the screen does: the plans are a real EXPLAIN
(ANALYZE, BUFFERS) of the demo shop, before and after the suggested index, stored in
docs/images/query-screen-plans.json; the findings come from explainer's rules, the code
from its renderers, as in the app. No database is needed.

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from explainer.advise.model import Evidence, IndexCandidate, IndexSuggestion
from explainer.plan.source import parse_plan
from explainer.report import DatabaseInfo, QueryReport, Report
from explainer.rules import RuleContext, run_rules
from explainer.tui.app import ExplainerApp
from explainer.tui.screens.query import QueryScreen
from explainer.tui.session import Workbench
from explainer.workload.fingerprint import fingerprint

IMAGES = Path(__file__).resolve().parent / "images"
SIZE = (140, 42)
DSN = "postgresql://app@localhost:5432/shop"


def demo_report() -> tuple[str, Report]:
    """The query's id and a report as the pipeline makes it, from the stored plans."""
    data = json.loads((IMAGES / "query-screen-plans.json").read_text(encoding="utf-8"))
    sql = data["sql"]
    before = parse_plan(json.dumps(data["before"]))
    after = parse_plan(json.dumps(data["after"]))
    query_id = fingerprint(sql)
    entry = QueryReport(
        id=query_id,
        sql=sql,
        calls=data["calls"],
        total_ms=data["total_ms"],
        source=data["source"],
        line=data["line"],
        plan=before,
        analyzed=True,
        findings=run_rules(before, RuleContext(sql=sql)),
    )
    evidence = Evidence(
        "rollback",
        before.root.total_cost,
        after.root.total_cost,
        before.execution_ms,
        after.execution_ms,
        True,
        before,
        after,
    )
    candidate = IndexCandidate.of(
        "public", "order_items", "order_id", include=("quantity", "unit_price")
    )
    suggestion = IndexSuggestion(candidate, {query_id: evidence}, ["seq-scan-selective"])
    database = DatabaseInfo(data["server_version"], "shop", DSN, "rollback")
    return query_id, Report(database, [entry], [suggestion])


async def query_screen(path: Path) -> None:
    query_id, report = demo_report()
    workbench = Workbench(DSN)
    app = ExplainerApp(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        workbench.set_report(report)
        app.open_query(query_id)
        await pilot.pause()
        assert isinstance(app.screen, QueryScreen)  # as Enter on its row opens it
        app.save_screenshot(path.name, str(path.parent))


def main() -> None:
    path = IMAGES / "query-screen.svg"
    asyncio.run(query_screen(path))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
