"""FedHub's own routes in the hub's REST API answer a request without valid credentials as
JupyterHub's API does, 403 with a JSON message, instead of tornado's redirect to the login page
(which a script would follow to a 200 HTML page)."""

from __future__ import annotations

import functools

from tornado import web


def api_authenticated(method):
    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials: send a JupyterHub API token "
                                     "(Authorization: token <token>)")
        return method(self, *args, **kwargs)
    return checked
