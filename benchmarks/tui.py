"""How fast the workbench starts and how fast a big plan tree renders and scrolls.

Prints:

- **start**: from a fresh Python process to the first screen painted, in a headless
  terminal of 120x40 (imports included, since that is what a user waits for), as measured
  inside the process and as the wall time of the whole process. It starts the real app,
  ``ExplainerApp`` (its Workload screen, no database), and falls back to a one-screen app
  when that app cannot be imported.
- **start through the command**: the same, through ``explainer tui --dsn ...`` (the
  command line's module, its parser and the config file included): ``explainer.cli.main``
  in a fresh process, the app run headless instead of in the terminal, no config file
  (``XDG_CONFIG_HOME`` is an empty folder). The DSN is never connected to at start.
- **plan tree**: a generated plan of 2,000 nodes (an Append of 500 partitions, each a
  Hash Join of a Seq Scan and a Hash of an Index Scan, with times and buffers) in
  ``PlanTree``: the first render (mount, layout, one full frame), then per frame the
  median and worst of N steps of each kind: page down, line down, a jump to the end and
  back, folding and unfolding the root (the visible rows are rebuilt). A step is a key
  press through the Pilot, the app handling it (cursor, scroll, details panel, layout)
  and a full frame composed (the compositor's ``render_full_update``). Its cost is the
  process's CPU time: the Pilot then waits for the app to be idle in sleeps of a
  scheduler tick, so wall time (also printed, over all steps) adds that waiting, which a
  real terminal does not.

Targets (issue 8): start under 1 s, under 200 ms per frame.

    python benchmarks/tui.py [--steps 40] [--starts 5] [--no-tree]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SIZE = (120, 40)

# Run in a fresh interpreter by --child-start: the clock starts before any import.
_CHILD = """
import time
started = time.perf_counter()
import asyncio
kind = "ExplainerApp"
try:
    from explainer.tui.app import ExplainerApp as StartApp
except ImportError:
    kind = "one-screen test app"
    from textual.app import App
    from textual.widgets import Footer, Static

    class StartApp(App[None]):
        def compose(self):
            yield Static("explainer")
            yield Footer()

imported = time.perf_counter() - started

async def main() -> None:
    app = StartApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.screen._compositor.render_full_update()
        shown = time.perf_counter() - started
        print(f"{kind}|{type(app.screen).__name__}|{imported:.4f}|{shown:.4f}", flush=True)

asyncio.run(main())
"""


# ``explainer tui`` as typed, but headless: App.run is the only thing replaced.
_CLI_CHILD = """
import time
started = time.perf_counter()
from explainer import cli
from explainer.tui.app import ExplainerApp

imported = time.perf_counter() - started
run = ExplainerApp.run

async def first_screen(pilot) -> None:
    await pilot.pause()
    pilot.app.screen._compositor.render_full_update()
    shown = time.perf_counter() - started
    print(f"explainer tui|{type(pilot.app.screen).__name__}|{imported:.4f}|{shown:.4f}", flush=True)
    pilot.app.exit()

def headless(self, **_):
    return run(self, headless=True, size=(120, 40), auto_pilot=first_screen)

ExplainerApp.run = headless
cli.main(["tui", "--dsn", "postgresql://nobody@127.0.0.1:1/none"])
"""


def measure_start(runs: int, child: str = _CHILD) -> dict[str, Any]:
    inside: list[float] = []
    imports: list[float] = []
    wall: list[float] = []
    kind = screen = ""
    with tempfile.TemporaryDirectory() as config_home:
        environment = {**os.environ, "XDG_CONFIG_HOME": config_home}
        for _ in range(runs):
            began = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", child],
                capture_output=True,
                text=True,
                check=True,
                env=environment,
            )
            wall.append(time.perf_counter() - began)
            line = next(x for x in done.stdout.splitlines() if x.count("|") == 3)
            kind, screen, imported, seconds = line.split("|")
            imports.append(float(imported))
            inside.append(float(seconds))
    return {
        "app": kind,
        "first screen": screen,
        "imports (median)": statistics.median(imports),
        "in process (median)": statistics.median(inside),
        "in process (max)": max(inside),
        "process wall (median)": statistics.median(wall),
    }


def _node(node_type: str, ms: float, rows: int, **extra: Any) -> dict[str, Any]:
    return {
        "Node Type": node_type,
        "Startup Cost": 0.0,
        "Total Cost": 100.0 + ms,
        "Plan Rows": max(1, rows // 3),
        "Plan Width": 40,
        "Actual Startup Time": 0.01,
        "Actual Total Time": ms,
        "Actual Rows": rows,
        "Actual Loops": 1,
        "Shared Hit Blocks": rows // 10,
        "Shared Read Blocks": rows // 50,
        **extra,
    }


def big_plan(partitions: int = 500) -> str:
    """A plan of ``2 + 4 * partitions`` nodes (2,002 for 500), as EXPLAIN (FORMAT JSON)."""
    parts = []
    slow = partitions // 2  # one partition read whole for a few rows: findings to mark
    for i in range(partitions):
        scan = _node(
            "Seq Scan",
            400.0 if i == slow else 0.3 + (i % 7) * 0.1,
            1000 + i,
            **{
                "Relation Name": f"events_p{i:03d}",
                "Alias": f"events_p{i:03d}",
                "Parent Relationship": "Outer",
                "Filter": "(kind = 'click'::text)",
                "Rows Removed by Filter": 5_000_000 if i == slow else 3000,
            },
        )
        lookup = _node(
            "Index Scan",
            0.05,
            200,
            **{
                "Relation Name": "accounts",
                "Alias": f"a{i}",
                "Index Name": "accounts_pkey",
                "Parent Relationship": "Outer",
                "Index Cond": f"(id = events_p{i:03d}.account_id)",
            },
        )
        hashed = _node("Hash", 0.08, 200, **{"Parent Relationship": "Inner", "Plans": [lookup]})
        join = _node(
            "Hash Join",
            scan["Actual Total Time"] + 0.3,
            900,
            **{
                "Join Type": "Inner",
                "Parent Relationship": "Member",
                "Hash Cond": f"(events_p{i:03d}.account_id = a{i}.id)",
                "Plans": [scan, hashed],
            },
        )
        parts.append(join)
    total = sum(p["Actual Total Time"] for p in parts) + 5.0
    append = _node("Append", total - 2.0, 900 * partitions, **{"Plans": parts})
    append["Parent Relationship"] = "Outer"
    root = _node("Aggregate", total, 1, **{"Strategy": "Plain", "Plans": [append]})
    return json.dumps([{"Plan": root, "Planning Time": 1.2, "Execution Time": total + 0.5}])


async def measure_tree(steps: int) -> dict[str, Any]:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer

    from explainer.plan.source import parse_plan
    from explainer.rules import RuleContext, run_rules
    from explainer.tui.widgets.plan_tree import PlanTree, PlanTreeView

    plan = parse_plan(big_plan())
    findings = run_rules(plan, RuleContext())
    nodes = sum(1 for _ in plan.walk())

    class TreeApp(App[None]):
        def compose(self) -> ComposeResult:
            yield Footer()

    app = TreeApp()
    figures: dict[str, Any] = {"nodes": nodes, "findings": len(findings)}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        compositor = app.screen._compositor

        began = time.perf_counter()
        tree = PlanTree(plan, findings)
        await app.screen.mount(tree, before=0)
        await pilot.pause()
        compositor.render_full_update()
        figures["first render"] = time.perf_counter() - began
        view = tree.query_one(PlanTreeView)
        view.focus()
        await pilot.pause()

        walls: list[float] = []

        async def frame(*keys: str) -> float:
            began, cpu = time.perf_counter(), time.process_time()
            await pilot.press(*keys)
            await pilot.pause()
            compositor.render_full_update()
            walls.append(time.perf_counter() - began)
            return time.process_time() - cpu

        kinds: dict[str, list[float]] = {"page down": [], "line down": [], "end/home": []}
        kinds["fold/unfold root"] = []
        for step in range(steps):
            if view.cursor >= len(view.visible_nodes) - 45:
                await frame("home")
            kinds["page down"].append(await frame("pagedown"))
            kinds["line down"].append(await frame("down"))
            kinds["end/home"].append(await frame("end" if step % 2 == 0 else "home"))
        for _ in range(max(2, steps // 4)):
            await frame("home")
            kinds["fold/unfold root"].append(await frame("left"))
            kinds["fold/unfold root"].append(await frame("right"))
        assert len(view.visible_nodes) == nodes
        for kind, times in kinds.items():
            figures[f"{kind}, cpu (median)"] = statistics.median(times)
            figures[f"{kind}, cpu (max)"] = max(times)
        figures["any step, wall (median)"] = statistics.median(walls)
        figures["any step, wall (max)"] = max(walls)
    return figures


def _print(title: str, figures: dict[str, Any]) -> None:
    print(title)
    for key, value in figures.items():
        shown = f"{value * 1000:,.1f} ms" if isinstance(value, float) else str(value)
        print(f"  {key:<26} {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="frames of each kind")
    parser.add_argument("--starts", type=int, default=5, help="fresh processes started")
    parser.add_argument("--no-tree", action="store_true", help="measure the start only")
    args = parser.parse_args()
    _print(f"start to first screen, {args.starts} fresh processes", measure_start(args.starts))
    _print(
        f"explainer tui to first screen, {args.starts} fresh processes",
        measure_start(args.starts, _CLI_CHILD),
    )
    if args.no_tree:
        return
    _print(
        f"plan tree at {SIZE[0]}x{SIZE[1]}, {args.steps} frames of each kind",
        asyncio.run(measure_tree(args.steps)),
    )


if __name__ == "__main__":
    main()
