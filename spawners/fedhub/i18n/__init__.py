"""The language a user reads FedHub in (English or 简体中文), and FedHub's words in it.

``language.py`` chooses it from the user's remembered choice and the browser's Accept-Language;
``catalogue.py`` holds the gettext catalogues (``locale/<language>/LC_MESSAGES/fedhub.po``,
compiled to ``.mo`` when FedHub is installed) and ``_``/``ngettext``, which read the language of
the request or spawn being served; ``jinja.py`` gives JupyterHub's pages and FedHub's own the
same words through Jinja's i18n extension; ``handlers.py`` makes a Tornado handler answer in
the request's language. docs/operators/languages.md says how to add one.
"""

from .catalogue import _, current_language, format_number, in_language, lazy, ngettext, sentences, use_language
from .handlers import InRequestLanguage
from .language import COOKIE, DEFAULT, LANGUAGES, choose, from_request

__all__ = ["_", "COOKIE", "DEFAULT", "InRequestLanguage", "LANGUAGES", "choose", "current_language", "format_number",
           "from_request", "in_language", "lazy", "ngettext", "sentences", "use_language"]
