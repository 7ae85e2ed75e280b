"""Who else opened this server: a teacher may open a student's lab where the class allows it
(JupyterHub's ``access:servers`` scope, filtered to the class); the student's server log says so,
once per visitor and hour, for the student and the centre's operators to see."""

from __future__ import annotations

import os
import time

REPEAT_AFTER = 3600.0


def watch_visitors(serverapp) -> None:
    """Wrap the server's request log: a request by anyone but the server's owner is noted."""
    owner = os.environ.get("JUPYTERHUB_USER", "")
    web_app = serverapp.web_app
    original = web_app.log_request  # whatever logs requests (JupyterHub's extension may set it later)
    noted: dict[str, float] = {}

    def log_request(handler):
        original(handler)
        user = getattr(handler, "current_user", None)
        name = getattr(user, "username", None) or (user.get("name") if isinstance(user, dict) else None)
        if not owner or not name or name == owner:
            return
        now = time.monotonic()
        if now - noted.get(name, -REPEAT_AFTER) >= REPEAT_AFTER:
            noted[name] = now
            serverapp.log.warning("%s's server opened by %s (%s %s): JupyterHub granted them access to it "
                                  "(a class's teachers_open_labs, or a share)", owner, name,
                                  handler.request.method, handler.request.path)
    web_app.log_request = log_request
