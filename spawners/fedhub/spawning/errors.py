"""Errors a user sees: JupyterHub's SpawnException with the same plain text on every page.

JupyterHub shows ``jupyterhub_message`` above the spawn form and in the progress stream;
without it those pages print the exception's repr. ``log_message`` may add detail for
operators' logs only.
"""

from jupyterhub.spawner import SpawnException


def user_error(message: str, *, reason: str, status_code: int = 400, log_message: str = "") -> SpawnException:
    exc = SpawnException(message, reason=reason, status_code=status_code, log_message=log_message or message)
    exc.jupyterhub_message = message
    return exc
