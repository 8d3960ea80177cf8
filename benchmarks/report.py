"""Build the README's results table from the result files.

Every benchmark (``benchmarks/results/*.json``) and recorded experiment
(``experiments/results/*.json``) carries a ``summary`` list of rows
``[work, jaxpde figure, compared with / target]``. This script gathers them into one
Markdown table and, with ``--write``, replaces the table between the ``results`` markers of
README.md — so the README only ever shows numbers that a result file holds.

    python benchmarks/report.py           # print the table
    python benchmarks/report.py --write   # update README.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "benchmarks" / "results", ROOT / "experiments" / "results")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def table() -> str:
    lines = [
        "| work | jaxpde | compared with / target | source |",
        "|---|---|---|---|",
    ]
    for folder in SOURCES:
        for path in sorted(folder.glob("*.json")):
            record = json.loads(path.read_text())
            device = record.get("machine", {}).get("jax_backend", "cpu")
            for work, ours, other in record.get("summary", []):
                source = f"`{path.relative_to(ROOT)}` ({device})"
                lines.append(f"| {work} | {ours} | {other} | {source} |")
    return "\n".join(lines)


def readme_with_table(readme: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the {START} / {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    if args.write:
        path = ROOT / "README.md"
        path.write_text(readme_with_table(path.read_text()))
    print(table())


if __name__ == "__main__":
    main()
