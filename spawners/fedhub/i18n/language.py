"""Which of FedHub's languages a request gets: the choice the user made on the hub's pages
(remembered in a cookie the hub, its services and the user's lab all see), else the first
language of the browser's Accept-Language that FedHub has, else English."""

from __future__ import annotations

DEFAULT = "en"
# gettext's names; the browser's tags that mean each (simplified Chinese only: no zh-TW catalogue)
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
_TAGS = {"en": "en", "zh": "zh_CN", "zh-cn": "zh_CN", "zh-sg": "zh_CN", "zh-hans": "zh_CN", "zh-hans-cn": "zh_CN"}
COOKIE = "fedhub-language"


def from_accept_language(header: str | None) -> str | None:
    """The best of FedHub's languages in an Accept-Language header ("zh-CN,zh;q=0.9,en;q=0.8"),
    by the browser's weights; None when it names none of them."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        tag = tag.strip().lower()
        language = _TAGS.get(tag) or (_TAGS.get(tag.split("-")[0]) if tag.split("-")[0] == "en" else None)
        if language and weight > 0:
            ranked.append((-weight, position, language))
    return min(ranked)[2] if ranked else None


def known(value: str | None) -> str | None:
    """A language FedHub has, from a cookie or a setting ("zh_CN", "zh-CN", "en"); None otherwise."""
    if not value:
        return None
    value = value.strip()
    if value in LANGUAGES:
        return value
    return _TAGS.get(value.lower())


def choose(cookie: str | None, accept_language: str | None) -> str:
    return known(cookie) or from_accept_language(accept_language) or DEFAULT


def from_request(handler) -> str:
    """The language of a Tornado request (a hub page, a REST call, a service's page)."""
    request = getattr(handler, "request", None)
    if request is None:
        return DEFAULT
    cookie = request.cookies.get(COOKIE)
    return choose(cookie.value if cookie is not None else None, request.headers.get("Accept-Language"))
