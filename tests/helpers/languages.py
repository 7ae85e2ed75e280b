"""What a page shows a Chinese user: the English sentences of FedHub's own (its two catalogues'
source texts) that are still there when the page should be in Chinese (issue 26)."""

from __future__ import annotations

import re
from functools import lru_cache

from babel.messages.pofile import read_po

from helpers.testbed import REPO

CATALOGUES = (REPO / "spawners/fedhub/i18n/locale/zh_CN/LC_MESSAGES/fedhub.po",
              REPO / "extensions/fedhub_lab/fedhub_lab/locale/zh_CN/LC_MESSAGES/fedhub_lab.po")
# the values put into sentences ({centre}, %(name)s, %1) are the user's data, not FedHub's words;
# markup is not words
PLACEHOLDER = re.compile(r"\{[^}]*\}|%\(\w+\)s|%\d|%%|<[^>]*>")


@lru_cache(maxsize=1)
def english_fragments() -> tuple[str, ...]:
    """Each English sentence's runs of two or more words between its placeholders."""
    found = set()
    for path in CATALOGUES:
        for message in read_po(path.open("rb")):
            for text in ([message.id] if isinstance(message.id, str) else message.id):
                for run in PLACEHOLDER.split(text or ""):
                    run = run.strip(" .,:;()'\"…")
                    if len(run.split()) >= 2 and len(run) >= 8:
                        found.add(run)
    return tuple(sorted(found))


def english_left(text: str) -> list[str]:
    """FedHub's English runs found in ``text`` (a page's visible text)."""
    return [run for run in english_fragments() if run in text]
