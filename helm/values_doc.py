"""The README's table of the chart's values, made from values.schema.json (the values' single
source of truth) and the defaults in values.yaml.

    python helm/values_doc.py --write README.md   # after changing the schema
    python helm/values_doc.py --check README.md   # the test suite: the README is current
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent / "fedhub"
START, END = "<!-- chart-values:start -->", "<!-- chart-values:end -->"


def rows(schema: dict, defaults, prefix: str = ""):
    """(dotted name, type, default, description) for every value, parents before children."""
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        default = defaults.get(name) if isinstance(defaults, dict) else None
        kind = prop.get("type") or ("one of " + ", ".join(map(str, prop["enum"])) if "enum" in prop else "")
        if "const" in prop:
            kind = f"always {prop['const']}"
        if prop.get("type") == "object" and "properties" in prop:
            yield path, "object", "", prop.get("description", "")
            yield from rows(prop, default, path + ".")
            continue
        if prop.get("type") == "array" and prop.get("items", {}).get("properties"):
            yield path, "list", _show(default), prop.get("description", "")
            yield from rows(prop["items"], None, path + "[].")
            continue
        yield path, kind, _show(default), prop.get("description", "")


def _show(value) -> str:
    if value in (None, "", [], {}):
        return ""
    return "`" + json.dumps(value) + "`"


def table() -> str:
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    lines = ["| value | type | default | what it is |", "|---|---|---|---|"]
    for path, kind, default, description in rows(schema, defaults):
        lines.append(f"| `{path}` | {kind} | {default} | {description.replace('|', '/')} |")
    return "\n".join(lines)


def replaced(readme: str) -> str:
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"the README has no {START} ... {END} section for the chart's values")
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", type=Path)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = args.readme.read_text()
    if args.write:
        args.readme.write_text(replaced(text))
    elif replaced(text) != text:
        sys.exit(f"{args.readme}'s table of the chart's values is out of date: run `make chart-docs`")


if __name__ == "__main__":
    main()
