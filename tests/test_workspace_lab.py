"""Files at other centres, in a real headless Chromium (issue 25): the lab user's server runs at
alpha; their workspace at gamma (gamma's own home) holds a table and a file over the large-file
size. The "Centres" panel's Refresh reads every centre as the user; gamma's files are listed with
their sizes, the large one left there until asked. "Copy here" brings it, followed in a
notification, and the file browser shows it; the file browser's context menu copies a file of
alpha's workspace to gamma."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from helpers.lab import LAB_USER as USER
from helpers.support import CHROMIUM, run_lab_command, write_as
from helpers.testbed import wait_for

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make deps)")

LARGE = 101 * 1024 * 1024  # over the default large-file size (100 MB): staging lists it, does not copy it


def sha(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def workspaces(centres):
    at = {c: centres.centres[c].home_of(USER) / "fedhub" for c in ("alpha", "gamma")}
    yield at
    for name in ("big.bin", "results", "notes.txt"):
        for folder in at.values():
            shutil.rmtree(folder / name, ignore_errors=True) if (folder / name).is_dir() else \
                (folder / name).unlink(missing_ok=True)


def test_files_at_another_centre_are_listed_in_the_lab_and_copied_here_and_there(lab, centres, workspaces):
    api, token, page = lab
    write_as(USER, workspaces["gamma"] / "results" / "table.csv", b"x,y\n" * 2500)
    write_as(USER, workspaces["gamma"] / "big.bin", os.urandom(LARGE))
    write_as(USER, workspaces["alpha"] / "notes.txt", b"written at alpha")

    run_lab_command(page, "Show Files at Other Centres")
    panel = page.locator("#fedhub-workspace-panel")
    panel.get_by_role("button", name="Refresh").click()
    gamma = panel.locator("section[data-centre=gamma]")
    table = gamma.locator("li[data-path='results/table.csv']")
    table.wait_for(timeout=60_000)
    assert "10 kB" in table.inner_text() and "newer there" in table.inner_text()
    big = gamma.locator("li[data-path='big.bin']")
    assert "106 MB" in big.inner_text() and "large: left there" in big.inner_text()
    assert not (workspaces["alpha"] / "big.bin").exists()
    # the test federation's "broken" centre has no notebook environment: said by name, the rest listed
    problem = panel.locator(".fedhub-workspace-problem").inner_text()
    assert problem.startswith("Broken has no FedHub notebook environment at /nonexistent/bin"), problem

    # "Copy here": the notification follows it to its end; the file browser shows it
    big.get_by_role("button", name="Copy here").click()
    page.locator(".Toastify__toast", has_text="Copied 1 file (106 MB) from Gamma").wait_for(timeout=120_000)
    assert sha(workspaces["alpha"] / "big.bin") == sha(workspaces["gamma"] / "big.bin")
    assert os.stat(workspaces["alpha"] / "big.bin").st_uid == os.stat(workspaces["gamma"] / "big.bin").st_uid
    page.locator(".jp-DirListing-item[title*='big.bin']").first.wait_for(timeout=30_000)
    # and gamma's section no longer offers it: alpha has the newest version now
    wait_for(lambda: big.get_by_role("button", name="Copy here").count() == 0, 30, "the panel to update")

    # the file browser's context menu: a file of alpha's workspace to gamma
    page.locator(".jp-DirListing-item[title*='notes.txt']").first.click(button="right")
    page.locator(".lm-Menu-item", has_text="Copy to Another Centre…").click()
    dialog = page.locator(".jp-Dialog", has_text="Copy 1 item to another centre")
    dialog.locator("select").select_option("gamma")
    dialog.get_by_role("button", name="Copy").click()
    page.locator(".Toastify__toast", has_text="Copied 1 file (16 B) from Alpha").wait_for(timeout=60_000)
    assert (workspaces["gamma"] / "notes.txt").read_bytes() == b"written at alpha"
