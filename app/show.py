"""`raspberry show BUILD`: a build's rows in the terminal, filtered; one row in full.

A table of items (one per question and sample: where it got to and why, its turns and cost),
narrowed by `--stage` and `--where`; `--id` prints one item whole, its dialogue beside the
monologue it became, and the checks it passed. `--html` writes the build's HTML browser.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from raspberry.build_files.store import BuildStore
from raspberry.report.browse import Item, find, items, select
from raspberry.report.browse_page import write_browser


def cmd_show(args: argparse.Namespace) -> int:
    store = BuildStore(args.output_dir, args.build_id)
    found = items(store, store.manifest())
    console = Console(width=args.width, soft_wrap=False)
    if args.html:
        print(f"rows: {write_browser(store, found)}")
        return 0
    if args.id:
        _one(console, find(found, args.id))
        return 0
    where = [*args.where, *([f"stage={args.stage}"] if args.stage else [])]
    chosen = select(found, where)
    table = Table(title=f"build {args.build_id}: {len(chosen)} of {len(found)} rows",
                  title_justify="left", expand=True)  # fmt: skip
    for name, width in (("id", 10), ("source", 13), ("outcome", 12), ("turns", 5), ("cost", 8)):
        table.add_column(name, no_wrap=True, min_width=width)
    table.add_column("reason", ratio=1, overflow="ellipsis", no_wrap=True)
    table.add_column("question", ratio=2, overflow="ellipsis", no_wrap=True)
    for item in chosen[: args.limit]:
        table.add_row(
            item.id[:10], item.source, item.outcome, "" if item.turns is None else str(item.turns),
            f"${item.cost:.4f}" if item.cost else "", item.reason, item.prompt.replace("\n", " "),
        )  # fmt: skip
    console.print(table)
    if len(chosen) > args.limit:
        console.print(f"… {len(chosen) - args.limit} more: --limit N shows more, --id ID one row")
    return 0


def _one(console: Console, item: Item) -> None:
    console.print(Text(f"{item.id}  {item.source}/{item.task}", style="bold"))
    console.print(f"question: {item.prompt}")
    console.print(f"reference: {item.reference}")
    said = f"{item.outcome} at {item.stage}" + (f": {item.reason}" if item.reason else "")
    turns = "" if item.turns is None else f"; turns {item.turns}, stopped: {item.stop}"
    console.print(f"outcome: {said}{turns}; cost ${item.cost:.4f}")
    for check in item.checks:
        console.print(f"  {check}")
    if not item.dialogue:
        return
    table = Table(expand=True, show_lines=True)
    table.add_column(f"dialogue ({len(item.dialogue)} turns)", ratio=1)
    monologue = "monologue exported" + (" (rewritten)" if item.rewritten else "")
    table.add_column(monologue if item.monologue else "not exported", ratio=1)
    dialogue = Text()
    for role, content in item.dialogue:
        dialogue.append(f"{role}\n", style="bold magenta")
        dialogue.append(f"{content}\n\n")
    table.add_row(dialogue, Text(item.monologue or item.reason))
    console.print(table)


def add_parser(sub: argparse._SubParsersAction, command: object) -> None:
    show = command(sub, "show", "look at a build's rows: filter them, or read one in full",
                   "raspberry show demo-20261207 --where turns>=2 --where source=synthesis",
                   cmd_show)  # type: ignore[operator]  # fmt: skip
    show.add_argument("build_id", help="the build's id")
    show.add_argument("--output-dir", default="data/builds", help="the folder of builds")
    show.add_argument("--stage", help="only rows that got to this stage and stopped there")
    show.add_argument(
        "--where", action="append", default=[], metavar="FIELD OP VALUE",
        help="a filter, repeatable: source, task, stage, outcome, reason, turns, stop, cost, "
             "rewritten, prompt or id; = != > >= < <= or ~ (contains), e.g. 'turns>=2', "
             "'outcome=rejected', 'reason~duplicate'",
    )  # fmt: skip
    show.add_argument("--id", help="one row in full: the start of its id or its question's id")
    show.add_argument("--limit", type=int, default=40, help="rows shown at most (default 40)")
    show.add_argument("--width", type=int, default=None, help="columns (default: the terminal's)")
    show.add_argument(
        "--html", action="store_true", help="write the build's row browser, browse.html"
    )
