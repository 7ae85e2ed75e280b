"""Errors a user sees: JupyterHub's SpawnException with the same plain text on every page.

JupyterHub shows ``jupyterhub_message`` above the spawn form and in the progress stream;
without it those pages print the exception's repr. ``log_message`` may add detail for
operators' logs only.
"""

import logging

from jupyterhub.spawner import SpawnException


def user_error(message: str, *, reason: str, status_code: int = 400, log_message: str = "",
               field: str = "") -> SpawnException:
    """``message`` in the user's language; ``reason`` (and ``field``, the option at fault) stay the
    same in every language, and a REST answer carries them as the X-FedHub-Code and
    X-FedHub-Field headers (JupyterHub's error body holds only ``status`` and ``message``)."""
    exc = SpawnException(message, reason=reason, status_code=status_code, log_message=log_message or message)
    exc.jupyterhub_message = message
    exc.headers = {"X-FedHub-Code": reason, **({"X-FedHub-Field": field} if field else {})}
    return exc


class _UserErrorTracebacks(logging.Filter):
    """JupyterHub logs every refused ``user_options`` with a traceback ("Exception applying
    user_options"). For options FedHub refused, the spawner has already logged one line naming
    the user and the field; the traceback would only bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, SpawnException) and getattr(exc, "jupyterhub_message", None)
                    and str(record.msg).startswith("Exception applying user_options"))


def quiet_user_error_tracebacks(log: logging.Logger) -> None:
    """Install the filter on the hub's log (once)."""
    if not any(isinstance(f, _UserErrorTracebacks) for f in log.filters):
        log.addFilter(_UserErrorTracebacks())
