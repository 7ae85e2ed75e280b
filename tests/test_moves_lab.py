"""Moving a kernel in a real headless Chromium: a notebook whose kernel runs beside the server at
alpha moves, through the status bar's centre item and its dialog, to gamma. The user is asked
about what cannot move, the notification follows the move, the status bar then names gamma and
every value is the same, the count continuing. A tab closed while the target waits in the queue
rolls the move back: the target's job goes, the source kernel keeps its variables.
"""

from __future__ import annotations

import math
import os
import secrets

import pytest
import requests

from helpers.support import CHROMIUM
from helpers.testbed import (HUB_CONFIG, TEST_HUB_CONFIG, TEST_USERS, HubAPI, blocker, centre_entry,
                             federation_variant, live_jobs, slurm, wait_for)
from fedhub_testbed.hub import LocalHub
from helpers.support import execute_in_kernel, run_lab_command
from helpers.lab import LAB_USER as USER, log_in, output, put_notebook, run_cell, service_report

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make deps)")

CELLS = [
    "import numpy as np\nimport pandas as pd",
    "n = 42\nd = {'k': [1, 2]}\na = [n, d]\nb = a\narr = np.random.default_rng(1).random(10 * 1024 * 1024 // 8)\n"
    "df = pd.DataFrame({'x': range(100)})\nsquare = lambda v: v * v\n"
    "class Box:\n    def __init__(self, v):\n        self.v = v\nbox = Box(5)\ngen = (i for i in range(3))",
    "import hashlib\nprint('digest', n, d, b is a, hashlib.sha256(arr.tobytes()).hexdigest()[:16], int(df.x.sum()),"
    " square(9), type(box).__name__, box.v, isinstance(box, Box), np.__name__)",
]


MOVABLE = [CELLS[0], CELLS[1].replace("\ngen = (i for i in range(3))", "")]


def open_move_dialog(page, centre: str):
    page.locator("#fedhub-kernel-centre").click()
    dialog = page.locator(".jp-Dialog", has_text="Move kernel to centre")
    dialog.locator("select[name=centre]").select_option(centre)
    return dialog


def take_offered_move(page, offer_text: str, says: str, centres: tuple[str, ...]) -> str:
    """Wait for the lab's move offer, check what it says and whom it suggests, take it through
    the move dialog (the suggested centre preselected) and wait for the kernel to be there."""
    offer = page.locator(".Toastify__toast", has_text=offer_text)
    offer.wait_for(timeout=60_000)
    assert says in offer.inner_text()
    button = offer.get_by_role("button", name="Move kernel to")
    suggested = button.inner_text().removeprefix("Move kernel to ").strip()
    assert suggested in centres, suggested
    button.click()
    dialog = page.locator(".jp-Dialog", has_text="Move kernel to centre")
    assert dialog.locator("select[name=centre] option:checked").inner_text().startswith(suggested)
    dialog.get_by_role("button", name="Move").click()
    page.locator("#fedhub-kernel-centre", has_text=f"Kernel at {suggested}").wait_for(timeout=90_000)
    return suggested


def kernels(hub, token: str) -> list[dict]:
    return requests.get(f"{hub.url}/user/{USER}/api/kernels", headers={"Authorization": f"token {token}"},
                        timeout=30).json()


def test_a_kernel_moves_through_the_lab_with_its_variables(lab, hub, centres):
    api, token, page = lab
    put_notebook(hub, token, "move.ipynb", "python3", CELLS)
    page.goto(f"{hub.url}/user/{USER}/lab/tree/move.ipynb")
    page.locator("#fedhub-kernel-centre", has_text="Kernel at Alpha").wait_for(timeout=60_000)
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
    try:
        for index in range(3):
            run_cell(page, index)
        output(page, 2).locator("text=digest").wait_for()
        before = output(page, 2).inner_text()
        assert "digest 42 {'k': [1, 2]} True" in before and "Box 5 True numpy" in before
        prompt = page.locator(".jp-NotebookPanel .jp-Cell").nth(2).locator(".jp-InputPrompt").inner_text()
        assert prompt.strip() == "[3]:"

        dialog = open_move_dialog(page, "gamma")
        dialog.get_by_role("button", name="Move").click()
        # the generator cannot move: the user is asked before anything switches
        choice = page.locator(".jp-Dialog", has_text="Move the kernel to Gamma without these?")
        choice.wait_for(timeout=90_000)
        assert "a running generator or coroutine" in choice.inner_text()
        choice.get_by_role("button", name="Switch anyway").click()
        page.locator(".Toastify__toast", has_text="Kernel moved to Gamma with").wait_for(timeout=90_000)
        page.locator("#fedhub-kernel-centre", has_text="Kernel at Gamma").wait_for(timeout=30_000)

        (moved,) = kernels(hub, token)
        assert moved["name"].startswith("fedhub-gamma")
        run_cell(page, 2)
        page.locator(".jp-NotebookPanel .jp-Cell").nth(2).locator(".jp-InputPrompt", has_text="[4]:").wait_for()
        assert output(page, 2).inner_text() == before
        assert len(live_jobs(centres, "gamma", USER)) == 1
    except Exception:
        page.screenshot(path="/tmp/fedhub-move-lab-failure.png")
        raise


def test_a_tab_closed_while_the_target_waits_rolls_the_move_back(lab, hub, centres):
    api, token, page = lab
    full = blocker(centres, "gamma", 2, 30)  # gamma's node is busy: the target kernel must wait
    try:
        put_notebook(hub, token, "move.ipynb", "python3", CELLS[:2])
        page.goto(f"{hub.url}/user/{USER}/lab/tree/move.ipynb")
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
        run_cell(page, 0)
        run_cell(page, 1)
        page.locator(".jp-NotebookPanel .jp-Cell").nth(1).locator(".jp-InputPrompt", has_text="[2]:").wait_for()
        (source,) = kernels(hub, token)
        open_move_dialog(page, "gamma").get_by_role("button", name="Move").click()
        # one notice for the wait, the move's (the kernel watch leaves a move's target to it)
        page.locator(".Toastify__toast", has_text="Pending at Gamma as job").wait_for(timeout=60_000)
        page.wait_for_timeout(3000)  # a kernel watch poll or two
        assert page.locator(".Toastify__toast", has_text="Pending at Gamma as job").count() == 1
        assert [j["state"] for j in live_jobs(centres, "gamma", USER)] == ["PENDING"]
        page.close()
        wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 60, "the closed tab's move to be rolled back")
        assert [k["id"] for k in kernels(hub, token)] == [source["id"]]
        reply = execute_in_kernel(hub.url, USER, token, source["id"], "print(n, b is a, arr.shape)")
        assert reply["stdout"] == "42 True (1310720,)\n"
    finally:
        slurm(centres, "gamma", "scancel", full)


def test_a_kernel_near_its_walltime_is_offered_a_move_to_the_soonest_centre(lab, hub, centres):
    """The kernel's job at gamma has 10 minutes, under the 15 at which the lab suggests a move."""
    api, token, page = lab
    put_notebook(hub, token, "move.ipynb", "python3", MOVABLE)
    page.goto(f"{hub.url}/user/{USER}/lab/tree/move.ipynb")
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
    try:
        run_lab_command(page, "Kernel at another centre")
        dialog = page.locator(".jp-Dialog", has_text="Kernel at another centre")
        dialog.locator("select[name=centre]").select_option("gamma")
        dialog.locator("input[name=walltime]").fill("00:10:00")
        dialog.get_by_role("button", name="Start kernel").click()
        page.locator("#fedhub-kernel-centre", has_text="Kernel at Gamma").wait_for(timeout=60_000)
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
        run_cell(page, 0)
        run_cell(page, 1)
        take_offered_move(page, "reaches its walltime in", "Move it, with its variables, to",
                          ("Alpha", "Beta"))
        wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the kernel's job at gamma to end")
        (moved,) = kernels(hub, token)
        assert execute_in_kernel(hub.url, USER, token, moved["id"], "print(n, b is a)")["stdout"] == "42 True\n"
    except Exception:
        page.screenshot(path="/tmp/fedhub-move-lab-failure.png")
        raise


def test_a_kernel_where_the_allocation_is_critical_is_offered_a_move(centres, browser):
    """Alpha's allocation reaches the critical level while the user's notebook runs there: the
    lab's warning offers to move the kernel to the centre an "any centre" start would choose.

    A second hub over the same centres whose federation file sets the critical level at 2 %, so
    the user's real usage at alpha is critical while far from the limit: at 97 % (the session
    hub's level) Slurm would end the jobs within a minute of the test, as GrpTRESMins does."""
    user = TEST_USERS[2]

    def low_levels(doc):
        doc["allocation_warnings"] = {"warn_percent": 1, "critical_percent": 2}
        centre_entry(doc, "alpha").pop("hub_connect_url", None)  # the session hub's port
    hub = LocalHub(federation_variant(centres, "critical.yaml", low_levels), centres.root / "hub-critical",
                   config_file=HUB_CONFIG, users=TEST_USERS, password="fedhub-test",
                   api_token=secrets.token_hex(24), extra_config=TEST_HUB_CONFIG)
    limit = ["sacctmgr", "-i", "modify", "user", user, f"account=proj_{user}", "cluster=alpha", "set"]
    hub.start()
    page = None
    try:
        api = HubAPI(hub)
        api.post(f"/users/{user}")
        r = api.spawn(user, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:20:00"})
        assert r.status_code in (201, 202), r.text
        api.wait_ready(user, 90)
        token = api.post(f"/users/{user}/tokens", json={"note": "critical"}).json()["token"]
        auth = {"Authorization": f"token {token}"}
        nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                         "source": "n = 42\nsquares = {i: i * i for i in range(10)}"}],
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
              "nbformat": 4, "nbformat_minor": 5}
        requests.put(f"{hub.url}/user/{user}/api/contents/critical.ipynb", headers=auth, timeout=30,
                     json={"type": "notebook", "content": nb}).raise_for_status()

        # about 4 % of a limit set from the user's real usage so far: critical, and minutes from the end
        wait_for(lambda: service_report(hub, user, fresh=True)["alpha"]["core_hours"]["used"] > 0, 60,
                 "the server's usage to show", 2)
        used_minutes = service_report(hub, user, fresh=True)["alpha"]["core_hours"]["used"] * 60
        slurm(centres, "alpha", *limit, f"GrpTRESMins=cpu={max(math.ceil(used_minutes / 0.04), 10)}")
        wait_for(lambda: service_report(hub, user)["alpha"].get("level") == "critical" or None, 30,
                 "the quota service to read the critical level", 1)

        page = log_in(browser, hub, user, f"/user/{user}/lab/tree/critical.ipynb")
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=90_000)
        run_cell(page, 0)
        page.locator(".jp-NotebookPanel .jp-Cell").nth(0).locator(".jp-InputPrompt", has_text="[1]:").wait_for()
        suggested = take_offered_move(
            page, "where this kernel runs",
            "of your allocation at Alpha, where this kernel runs. Move it, with its variables, to", ("Beta", "Gamma"))
        (moved,) = requests.get(f"{hub.url}/user/{user}/api/kernels", headers=auth, timeout=30).json()
        assert moved["name"].startswith(f"fedhub-{suggested.lower()}")
        reply = execute_in_kernel(hub.url, user, token, moved["id"], "print(n, squares[9])")
        assert reply["stdout"] == "42 81\n"
    except Exception:
        if page is not None:
            page.screenshot(path="/tmp/fedhub-move-critical-failure.png")
        raise
    finally:
        if page is not None:
            page.close()
        HubAPI(hub).stop(user)
        slurm(centres, "alpha", *limit, "GrpTRESMins=cpu=-1")
        hub.stop()
    for centre in ("alpha", "beta", "gamma"):
        wait_for(lambda: live_jobs(centres, centre, user) == [], 30, f"nothing of {user} left at {centre}")
