"""fedhub-lab on a notebook server that FedHub did not start (no quota service): nothing of it
shows in JupyterLab, its handler says why, and ``quota()`` explains instead of failing."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest
import requests

from helpers.support import CHROMIUM
from helpers.testbed import JOBENV, wait_for
from fedhub_testbed.centres import free_port

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make deps)")


@pytest.fixture
def plain_lab(tmp_path):
    """A JupyterLab from the notebook environment, with FedHub's variables removed."""
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDHUB_", "JUPYTERHUB_"))}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")  # no user config of the machine
    proc = subprocess.Popen(
        [f"{JOBENV}/bin/jupyter-lab", "--allow-root", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok
        except requests.ConnectionError:
            return None
    try:
        wait_for(up, 60, "the plain JupyterLab to start", 0.5)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_without_a_quota_service_the_lab_shows_nothing_of_it(plain_lab, browser):
    url, token = plain_lab
    r = requests.get(f"{url}/fedhub/api/quota", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 404
    assert r.json() == {"available": False, "status": 404, "message":
                        "this server was not started by a FedHub with a quota service (FEDHUB_QUOTA_URL is not set)"}
    # the handler is the server's: without the server's token it answers 403, as any Jupyter API
    assert requests.get(f"{url}/fedhub/api/quota", timeout=10).status_code == 403

    page = browser.new_page()
    page.goto(f"{url}/lab?token={token}")
    page.locator(".jp-StatusBar-Item").first.wait_for()  # the status bar is there ...
    # ... FedHub's extension loaded, asked its handler and concluded there is no service ...
    page.locator("body[data-fedhub-quota='absent']").wait_for(state="attached", timeout=30_000)
    assert page.locator("#fedhub-quota-status").is_visible() is False  # ... so it shows no item
    assert page.locator(".jp-SideBar [title='Allocations']").count() == 0  # and no panel tab


def test_quota_in_a_kernel_without_a_service_explains_why():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDHUB_", "JUPYTERHUB_"))}
    out = subprocess.run([f"{JOBENV}/bin/python", "-c",
                          "from fedhub_lab import quota; box = quota(); print(box.children[0].value)"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "Allocations are not available: this server was not started by a FedHub with a quota service" in out


def test_quota_table_escapes_names_and_errors_and_marks_the_current_centre():
    script = r'''
import json
from fedhub_lab.agent.quota_widget import render_table
envelope = {"available": True, "centre": "alpha", "centre_name": "Alpha", "quota": {"user": "u",
    "thresholds": {"warn": 80, "critical": 95}, "centres": [
    {"centre": "alpha", "name": "<b>Alpha</b>", "error": None, "level": "critical", "account": "p",
     "read_at": "2026-11-24T09:00:00.123", "core_hours": {"used": 9.6, "limit": 10.0, "remaining": 0.4, "percent": 96.0},
     "gpu_hours": {"used": 0.0, "limit": None}, "storage_gb": {"used": None, "limit": None}},
    {"centre": "gamma", "name": "Gamma", "error": "sacct: <error>"}]}}
print(render_table(envelope))
'''
    out = subprocess.run([f"{JOBENV}/bin/python", "-c", script], capture_output=True, text=True, check=True).stdout
    assert "&lt;b&gt;Alpha&lt;/b&gt; (this server)" in out and "<b>Alpha" not in out
    assert "9.6 of 10.0 core-h (0.4 left)" in out and "0.0 GPU-h used (no limit)" in out
    assert "class='fedhub-level-critical' style='background:#f8d7da'" in out
    assert "2026-11-24 09:00:00<" in out
    assert "not available: sacct: &lt;error&gt;" in out
