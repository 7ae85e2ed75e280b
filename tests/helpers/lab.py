"""JupyterLab in headless Chromium as a user meets it, and the notebooks the browser tests put in
the lab user's server: shared by the lab, kernel, move and class browser tests."""

from __future__ import annotations

import requests

from .testbed import TEST_USERS

LAB_USER = TEST_USERS[0]  # whose lab the kernel and move browser tests open (conftest's lab fixture)


def log_in(browser, hub, user: str, next_path: str):
    """A new page (``browser`` may be a browser or one of its contexts) logged in as ``user``."""
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{hub.url}/hub/login?next={next_path}")
    page.fill("#username_input", user)
    page.fill("#password_input", "fedhub-test")
    page.click("#login_submit")
    return page


def service_report(hub, user: str, fresh: bool = False) -> dict:
    r = requests.get(f"{hub.url}/services/fedhub-quota/api/quota/{user}{'?fresh=1' if fresh else ''}", timeout=30,
                     headers={"Authorization": f"token {hub.api_token}"})
    assert r.status_code == 200, r.text
    return {c["centre"]: c for c in r.json()["centres"]}


NOTEBOOKS = ("at-beta.ipynb", "waits.ipynb", "choose.ipynb", "move.ipynb", "continue.ipynb")  # and test_moves_lab's


def forget_workspaces(hub, token: str) -> None:
    auth = {"Authorization": f"token {token}"}
    for workspace in requests.get(f"{hub.url}/user/{LAB_USER}/lab/api/workspaces", headers=auth,
                                  timeout=30).json().get("workspaces", {}).get("ids", []):
        requests.delete(f"{hub.url}/user/{LAB_USER}/lab/api/workspaces/{workspace}", headers=auth, timeout=30)


def put_notebook(hub, token: str, name: str, kernel: str, cells: list[str]) -> None:
    assert name in NOTEBOOKS  # the fixture removes them afterwards
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": c}
                    for c in cells],
          "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    r = requests.put(f"{hub.url}/user/{LAB_USER}/api/contents/{name}", timeout=30,
                     headers={"Authorization": f"token {token}"}, json={"type": "notebook", "content": nb})
    assert r.status_code in (200, 201), r.text


def run_cell(page, index: int) -> None:
    page.locator(".jp-NotebookPanel .jp-Cell").nth(index).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")


def output(page, index: int):
    return page.locator(".jp-NotebookPanel .jp-Cell").nth(index).locator(".jp-OutputArea")
