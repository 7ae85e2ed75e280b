"""Start (or stop) every student's server of a class through the hub's REST API, in stages.

A class of 500 must not arrive at the hub as 500 simultaneous spawn requests: requests go out a
window at a time; the window grows while the hub accepts them and halves when it answers 429
(``concurrent_spawn_limit``). After a 429 it pauses 1 s, doubling with each 429 in a row up to
5 s, and never longer than the hub's Retry-After. JupyterHub sizes Retry-After (30-60 s) for
people retrying in their browsers; a class's own spawns free the hub's slots within seconds, so
waiting it out in full left the hub idle for most of a class's start, while one request every
5 s (the window is down to one by then) costs the hub a few milliseconds. Each request uses the
teacher's own token, so JupyterHub's scopes decide what the teacher may start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..hub_tls import hub_ssl_context
from ..i18n import current_language

log = logging.getLogger("fedhub.classes")


@dataclass
class BulkResult:
    """What became of each student's request: "started", "already running", or the hub's refusal."""
    outcomes: dict[str, str] = field(default_factory=dict)
    retries_429: int = 0
    largest_window: int = 0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            key = outcome if outcome in ("started", "stopped", "already running", "not running") else "refused"
            counts[key] = counts.get(key, 0) + 1
        return counts


class HubCaller:
    """The hub's REST API with one caller's token."""

    def __init__(self, api_url: str, token: str, timeout: float = 60.0):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ssl = hub_ssl_context() if self.api_url.startswith("https:") else None

    async def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, dict]:
        """(status, JSON answer, headers); HTTP errors are answers, not exceptions."""
        request = HTTPRequest(f"{self.api_url}{path}", method=method, headers={
            "Authorization": f"token {self.token}",
            "Accept-Language": current_language().replace("_", "-")},  # the hub's words in the caller's language
                              body=json.dumps(body) if body is not None else (None if method in ("GET", "DELETE")
                                                                              else "{}"),
                              request_timeout=self.timeout, allow_nonstandard_methods=True,
                              ssl_options=self.ssl)
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            response = e.response
            if response is None:
                return e.code, {"message": str(e)}, {}
        try:
            answer = json.loads(response.body) if response.body else {}
        except ValueError:
            answer = {}
        return response.code, answer if isinstance(answer, dict) else {"value": answer}, dict(response.headers)


async def start_all(hub: HubCaller, class_name: str, students: list[str], *, window: int = 8,
                    max_window: int = 64, result: BulkResult | None = None) -> BulkResult:
    """Ask the hub to start each student's server for the class; returns when every request was answered."""
    return await _staged(hub, students, lambda s: ("POST", f"/users/{quote(s, safe='')}/server", {"class": class_name}),
                         _start_outcome, window, max_window, result or BulkResult())


async def stop_all(hub: HubCaller, students: list[str], *, window: int = 16, result: BulkResult | None = None) -> BulkResult:
    return await _staged(hub, students, lambda s: ("DELETE", f"/users/{quote(s, safe='')}/server", None),
                         _stop_outcome, window, window, result or BulkResult())


def _start_outcome(status: int, answer: dict) -> str:
    if status in (201, 202):
        return "started"
    message = str(answer.get("message", ""))
    if status == 400 and ("is already running" in message or "is pending" in message):
        return "already running"
    return f"refused ({status}): {message}" if message else f"refused ({status})"


def _stop_outcome(status: int, answer: dict) -> str:
    if status in (202, 204):
        return "stopped"
    message = str(answer.get("message", ""))
    if status == 400 and "not running" in message:
        return "not running"
    return f"refused ({status}): {message}" if message else f"refused ({status})"


FIRST_PAUSE = 1.0  # seconds after a first 429; doubled for each 429 in a row
LONGEST_PAUSE = 5.0


def pause_after_429(in_a_row: int, retry_after: str | None) -> float:
    """Seconds to wait after the ``in_a_row``-th 429 in a row: 1, 2, 4, 5, 5 ... s, and never
    longer than the hub's Retry-After."""
    try:
        hub_asks = float(retry_after) if retry_after is not None else LONGEST_PAUSE
    except ValueError:
        hub_asks = LONGEST_PAUSE
    return min(FIRST_PAUSE * 2 ** (in_a_row - 1), max(hub_asks, 0.5), LONGEST_PAUSE)


async def _staged(hub: HubCaller, students: list[str], request_for, outcome_of, window: int, max_window: int,
                  result: BulkResult) -> BulkResult:
    waiting = deque(students)
    running: dict[asyncio.Task, str] = {}
    pause_until = 0.0
    refused_in_a_row = 0
    loop = asyncio.get_running_loop()
    while waiting or running:
        while waiting and len(running) < window and loop.time() >= pause_until:
            student = waiting.popleft()
            method, path, body = request_for(student)
            running[asyncio.ensure_future(hub.call(method, path, body))] = student
        result.largest_window = max(result.largest_window, len(running))
        if not running:  # paused after a 429
            await asyncio.sleep(max(0.0, pause_until - loop.time()))
            continue
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED,
                                     timeout=max(0.05, pause_until - loop.time()) if pause_until > loop.time() else None)
        for task in done:
            student = running.pop(task)
            try:
                status, answer, headers = task.result()
            except Exception as e:  # the hub did not answer at all
                result.outcomes[student] = f"refused: the hub did not answer ({e})"
                continue
            if status == 429:
                result.retries_429 += 1
                waiting.appendleft(student)
                if loop.time() < pause_until:  # sent before the pause began: the same refusal, not another
                    continue
                refused_in_a_row += 1
                window = max(1, window // 2)
                delay = pause_after_429(refused_in_a_row, headers.get("Retry-After"))
                pause_until = loop.time() + delay
                log.info("The hub is at its concurrent spawn limit: %d waiting, window now %d, pausing %.1f s",
                         len(waiting), window, delay)
                continue
            refused_in_a_row = 0
            result.outcomes[student] = outcome_of(status, answer)
            window = min(max_window, window + 1)
    return result
