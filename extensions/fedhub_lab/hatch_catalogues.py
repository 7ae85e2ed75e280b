"""Hatch build hook: turn the lab's gettext catalogues (fedhub_lab/locale/*/LC_MESSAGES/fedhub_lab.po,
kept in the repository) into the JSON that JupyterLab's translator loads, at every install and build.

jupyterlab_server finds them through the ``jupyterlab.locale`` entry point (pyproject.toml) and
serves them with the language pack of the same locale; a plural entry needs two forms there even
for a language with one, or the lab ignores it.
"""

from __future__ import annotations

import json
from pathlib import Path

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by the unit tests, which have no hatchling
    BuildHookInterface = object

LOCALE = Path(__file__).parent / "fedhub_lab" / "locale"
DOMAIN = "fedhub_lab"


def lab_catalogue(po: Path) -> dict:
    """The JSON (Jed format, as the JupyterLab language packs ship) of one ``.po``."""
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalogue = read_po(f, locale=po.parents[1].name)
    data: dict = {"": {"domain": DOMAIN, "language": po.parents[1].name.replace("_", "-"),
                       "plural_forms": catalogue.plural_forms, "version": catalogue.version or "0"}}
    for message in catalogue:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, (list, tuple)):
            forms = list(message.string)
            if not all(forms):
                continue
            data[message.id[0]] = forms + [""] * max(0, 2 - len(forms))
        elif message.string:
            data[message.id] = [message.string]
    return data


def compile_catalogues() -> list[Path]:
    written = []
    for po in sorted(LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        target = po.with_suffix(".json")
        target.write_text(json.dumps(lab_catalogue(po), ensure_ascii=False, indent=0, sort_keys=True) + "\n",
                          encoding="utf-8")
        written.append(target)
    return written


class CatalogueHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        compile_catalogues()
