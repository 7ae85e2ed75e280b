"""FedHub's words in the language of what is being served.

The language lives in a context variable: a hub request or a spawn sets it once
(``use_language``) and every message made below it, in that task and the tasks it starts, comes
out in it. Messages are written ``_("Pending at {centre} as job {job}").format(...)`` so the
catalogue holds whole sentences with named places, which a translator may reorder.
"""

from __future__ import annotations

import gettext
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.numbers import format_decimal

from .language import DEFAULT, LANGUAGES

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "fedhub"
_language: ContextVar[str] = ContextVar("fedhub_language", default=DEFAULT)
log = logging.getLogger("fedhub.i18n")


@lru_cache(maxsize=None)
def translations(language: str) -> gettext.NullTranslations:
    if language == DEFAULT:
        return gettext.NullTranslations()
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    except OSError:  # installed without its compiled catalogue: say so once, show English
        log.error("FedHub's %s catalogue is not compiled (%s/%s/LC_MESSAGES/%s.mo is missing): reinstall FedHub "
                  "(pip install builds it) or run `make deps`; showing English", LANGUAGES.get(language, language),
                  LOCALE_DIR, language, DOMAIN)
        return gettext.NullTranslations()


def use_language(language: str | None) -> str:
    """Serve what follows in ``language`` (one of ``LANGUAGES``; anything else: English)."""
    chosen = language if language in LANGUAGES else DEFAULT
    _language.set(chosen)
    return chosen


def current_language() -> str:
    return _language.get()


def sentences(parts: list[str]) -> str:
    """Whole sentences run together as the language writes them (Chinese: no space between)."""
    return ("" if _language.get().startswith("zh") else " ").join(parts)


class lazy:  # noqa: N801 - used like _()
    """A message worded only when shown (``str()``), in the language current then: kept in a
    result that both a user (their language) and the operator's log (English) read."""

    def __init__(self, message: str, **values):
        self.message, self.values = message, values

    def __str__(self) -> str:
        return _(self.message).format(**self.values)

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    __hash__ = None


@contextmanager
def in_language(language: str):
    """Words made inside the block are in ``language`` (e.g. English for the operator's log line
    beside a user's message); the request's language again after it."""
    token = _language.set(language if language in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _language.reset(token)


def _(message: str) -> str:
    return translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_language.get()).ngettext(singular, plural, n)


def format_number(value: float, digits: int | None = 1) -> str:
    """A figure (core-hours, a share) with the current language's separators: ``digits`` after
    the point, or (None) as many as it has, up to three."""
    babel_locale = "zh_Hans_CN" if _language.get() == "zh_CN" else "en"
    if digits is None:
        return format_decimal(value, format="#,##0.###", locale=babel_locale)
    return format_decimal(round(value, digits), format="#,##0." + "0" * digits if digits else "#,##0",
                          locale=babel_locale)
