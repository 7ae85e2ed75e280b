"""Tornado handlers that answer in the language of the request.

Mixed in before the handler's base class (``class H(InRequestLanguage, APIHandler)``): ``prepare``
sets the language from the request's remembered choice or Accept-Language before the handler
runs, so every message its answer carries, errors included, is in it. A notebook server
forwarding the lab's calls sends the lab's language as Accept-Language.
"""

from __future__ import annotations

from .catalogue import use_language
from .language import from_request


class InRequestLanguage:
    def prepare(self):
        use_language(from_request(self))
        return super().prepare()
