"""The table of the chart's values, made from values.schema.json (the values' single source of
truth) and the defaults in values.yaml. The docs build writes it into the reference
(docs/_ext/fedhub_reference.py); run alone, it prints the table.

    python helm/values_doc.py
"""

from __future__ import annotations

import json
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


def main() -> None:
    print(table())


if __name__ == "__main__":
    main()
