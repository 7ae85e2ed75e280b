"""Kernels at other centres in a real headless Chromium, from a server at alpha: the kernel picker
offers beta, a notebook's kernel runs at beta (the firewalled centre), prints its cluster, round-
trips an ipywidgets slider and an input(), stops an endless loop on interrupt, and the status bar
names the centre. A kernel that waits in beta's queue says so in Slurm's words, survives a page
reload, and "Cancel wait" cancels its job.
"""

from __future__ import annotations

import os

import pytest
import requests

from helpers.support import CHROMIUM
from helpers.testbed import blocker, live_jobs, slurm, wait_for
from helpers.support import run_lab_command
from helpers.lab import LAB_USER, output, put_notebook, run_cell

USER = LAB_USER
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make deps)")

CELLS = [
    "import os\nprint('running at', os.environ['SLURM_CLUSTER_NAME'])",
    "from ipywidgets import IntSlider\nslider = IntSlider(value=3, min=0, max=10)\nslider",
    "print('slider at', slider.value)",
    "name = input('Your name? ')\nprint('hello', name)",
    "while True:\n    pass",
]


def test_a_notebook_runs_its_kernel_at_another_centre(lab, hub, centres):
    api, token, page = lab
    specs = requests.get(f"{hub.url}/user/{USER}/api/kernelspecs", headers={"Authorization": f"token {token}"},
                         timeout=30).json()["kernelspecs"]
    assert specs["fedhub-beta"]["spec"]["display_name"] == "Python 3 at Beta"
    assert specs["fedhub-beta"]["spec"]["interrupt_mode"] == "message"
    # the launcher offers it
    page.locator(".jp-LauncherCard", has_text="Python 3 at Beta").first.wait_for()

    put_notebook(hub, token, "at-beta.ipynb", "fedhub-beta", CELLS)
    page.goto(f"{hub.url}/user/{USER}/lab/tree/at-beta.ipynb")
    page.locator("#fedhub-kernel-centre", has_text="Kernel at Beta").wait_for(timeout=90_000)
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=90_000)
    (job,) = live_jobs(centres, "beta", USER)
    try:
        run_cell(page, 0)
        output(page, 0).locator("text=running at beta").wait_for()

        run_cell(page, 1)  # a widget: its comm messages travel through the relay both ways
        handle = output(page, 1).locator(".noUi-handle")
        handle.wait_for()
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.locator(".jp-NotebookPanel .jp-Cell").nth(2).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        output(page, 2).locator("text=slider at 4").wait_for()

        page.locator(".jp-NotebookPanel .jp-Cell").nth(3).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        stdin = output(page, 3).locator("input.jp-Stdin-input")
        stdin.wait_for()
        stdin.fill("Ada")
        stdin.press("Enter")
        output(page, 3).locator("text=hello Ada").wait_for()

        page.locator(".jp-NotebookPanel .jp-Cell").nth(4).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-StatusBar-TextItem", has_text="| Busy").wait_for()
        page.wait_for_timeout(1000)
        page.keyboard.press("Escape")
        page.keyboard.press("i")
        page.keyboard.press("i")
        output(page, 4).locator("text=KeyboardInterrupt").first.wait_for()
        # the interrupt was a message: the same job still runs the kernel
        assert [j["job_id"] for j in live_jobs(centres, "beta", USER)] == [job["job_id"]]
    except Exception:
        page.screenshot(path="/tmp/fedhub-kernel-lab-failure.png")
        raise


def test_a_waiting_kernel_says_why_survives_a_reload_and_can_be_cancelled(lab, hub, centres):
    api, token, page = lab
    full = blocker(centres, "beta", 4, 30)  # beta's only node is busy: a kernel there must wait
    try:
        put_notebook(hub, token, "waits.ipynb", "fedhub-beta", ["print(1)"])
        page.goto(f"{hub.url}/user/{USER}/lab/tree/waits.ipynb")
        notice = page.locator(".Toastify__toast", has_text="Pending at Beta as job")
        notice.wait_for(timeout=60_000)
        # Slurm gives its reason at its next scheduling pass; the notice follows
        page.locator(".Toastify__toast", has_text="waiting for Resources").wait_for(timeout=60_000)
        (waiting,) = live_jobs(centres, "beta", USER)
        assert waiting["state"] == "PENDING"

        page.reload()  # the page comes back while the kernel still waits
        page.locator("#jp-main-statusbar").wait_for(timeout=30_000)
        notice.wait_for(timeout=30_000)
        page.get_by_role("button", name="Cancel wait").first.click()
        wait_for(lambda: live_jobs(centres, "beta", USER) == [], 30, "the waiting kernel's job to be cancelled")
        page.locator(".Toastify__toast", has_text="Cancelled the wait for a kernel").wait_for()
    except Exception:
        page.screenshot(path="/tmp/fedhub-kernel-lab-failure.png")
        raise
    finally:
        slurm(centres, "beta", "scancel", full)


def test_kernel_at_another_centre_is_chosen_in_a_dialog_checked_like_a_spawn(lab, hub, centres):
    api, token, page = lab
    put_notebook(hub, token, "choose.ipynb", "python3", ["import os\nprint('at', os.environ.get('SLURM_CLUSTER_NAME'))"])
    page.goto(f"{hub.url}/user/{USER}/lab/tree/choose.ipynb")
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
    try:
        run_lab_command(page, "Kernel at another centre")
        dialog = page.locator(".jp-Dialog")
        dialog.locator("select[name=centre]").select_option("gamma")
        assert dialog.locator("select[name=partition]").input_value() == "small"
        assert dialog.locator("select[name=project]").is_hidden()  # gamma offers no choice of project here
        dialog.locator("input[name=cores]").fill("99")
        dialog.get_by_role("button", name="Start kernel").click()
        # the hub's own words for a bad value, then the form again with what was typed
        error = page.locator(".jp-Dialog", has_text="cores: 99 is outside what partition 'small' at Gamma allows")
        error.wait_for()
        error.get_by_role("button").last.click()
        dialog = page.locator(".jp-Dialog", has_text="Kernel at another centre")
        assert dialog.locator("input[name=cores]").input_value() == "99"
        dialog.locator("select[name=centre]").select_option("gamma")
        dialog.locator("input[name=cores]").fill("1")
        dialog.get_by_role("button", name="Start kernel").click()
        page.locator("#fedhub-kernel-centre", has_text="Kernel at Gamma").wait_for(timeout=60_000)
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=90_000)
        run_cell(page, 0)
        output(page, 0).locator("text=at gamma").wait_for(timeout=30_000)
        (job,) = live_jobs(centres, "gamma", USER)
        assert job["cpus"] == "1" and job["partition"] == "small"
    except Exception:
        page.screenshot(path="/tmp/fedhub-kernel-lab-failure.png")
        raise
