"""Jinja's i18n extension for JupyterHub's pages and FedHub's own, in the request's language.

JupyterHub builds its Jinja environment itself (``c.JupyterHub.jinja_environment_options``
names this extension) and renders without telling the template which request it serves. Every
page's namespace has ``static_url``, the serving handler's own method: the handler, hence its
cookie and Accept-Language, is read from it. A template rendered outside a request (the spawn
form, a service's page) gets ``fedhub_language`` from its caller, which wins.
"""

from __future__ import annotations

from jinja2 import pass_context
from markupsafe import Markup
from jinja2.ext import InternationalizationExtension

from .catalogue import translations
from .language import DEFAULT, LANGUAGES, from_request


def page_language(context) -> str:
    named = context.get("fedhub_language")
    if named in LANGUAGES:
        return named
    handler = getattr(context.get("static_url"), "__self__", None)
    return from_request(handler) if handler is not None else DEFAULT


@pass_context
def _gettext(context, message: str, **variables) -> str:
    text = translations(page_language(context)).gettext(message)
    return _fill(context, text, variables)


@pass_context
def _ngettext(context, singular: str, plural: str, n: int, **variables) -> str:
    text = translations(page_language(context)).ngettext(singular, plural, n)
    return _fill(context, text, {"num": n, **variables})


def _fill(context, text: str, variables: dict) -> str:
    # Jinja's new-style gettext: the template's values go in by name ("%%" is a literal "%"),
    # escaped when the page is
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


@pass_context
def _page_language(context) -> str:
    return page_language(context)


class FedHubI18n(InternationalizationExtension):
    """``{% trans %}`` and ``_()`` in the language of the page's request."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals.update(gettext=_gettext, ngettext=_ngettext, _=_gettext,
                                   fedhub_languages=LANGUAGES, fedhub_page_language=_page_language)
        environment.newstyle_gettext = True
