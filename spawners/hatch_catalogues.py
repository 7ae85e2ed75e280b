"""Hatch build hook: compile FedHub's gettext catalogues (spawners/fedhub/i18n/locale/*/LC_MESSAGES/*.po,
kept in the repository) into the ``.mo`` files the hub reads, whenever FedHub is installed or built."""

from __future__ import annotations

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LOCALE = Path(__file__).parent / "fedhub" / "i18n" / "locale"


def compile_catalogues() -> list[Path]:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as f:
            catalogue = read_po(f, locale=po.parents[1].name)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as f:
            write_mo(f, catalogue)  # fuzzy entries are left out, as msgfmt does
        written.append(mo)
    return written


class CatalogueHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        compile_catalogues()
