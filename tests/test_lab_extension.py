"""The JupyterLab extension in a real headless Chromium, on a server spawned at a real centre.

What a user sees: the status bar names the centre and what is left of the allocation there,
the panel shows every centre's figures as the quota service gives them, a warning appears when
the allocation is nearly used up, ``quota()`` shows the same table in a notebook, and when the
quota service stops answering the lab says so while the hub keeps working.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from helpers.support import CHROMIUM
from helpers.lab import log_in, service_report
from helpers.testbed import TEST_USERS, slurm, wait_for

U1 = TEST_USERS[0]
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make deps)")


def hours(value: float) -> str:
    """The lab's rounding (format.ts)."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def set_core_minutes(centres, minutes: int) -> None:
    slurm(centres, "alpha", "sacctmgr", "-i", "modify", "user", U1, f"account=proj_{U1}", "cluster=alpha",
          "set", f"GrpTRESMins=cpu={minutes}")


def quota_service_pid(hub) -> int:
    """The quota service this test's hub started (from the hub's own process group, never another
    FedHub's on the same machine)."""
    pids = [pid for args, pid in hub.service_pids().items() if "fedhub.quota.service" in args]
    assert len(pids) == 1, f"expected this hub's one quota service, found {hub.service_pids()}"
    return pids[0]


def status_text(page) -> str:
    item = page.locator("#fedhub-quota-status")
    item.wait_for(state="visible")
    wait_for(lambda: item.inner_text().strip() or None, 20, "the status bar item to show figures")
    return item.inner_text().strip()


def test_status_bar_panel_warning_and_notebook_widget_show_the_service_figures(api, hub, centres, browser):
    # Usage to warn about later: a 3-CPU job for a minute at alpha, alongside the server (1 CPU):
    # about 4 core-minutes by the time it ends, enough for a whole-minute limit to put it in the warning band.
    usage_job = slurm(centres, "alpha", "runuser", "-u", U1, "--", "sbatch", "--parsable", "-c3", "--time=5",
                      "--output=/dev/null", f"--account=proj_{U1}", "--wrap", "sleep 60", cwd="/")
    set_core_minutes(centres, 100_000)
    try:
        r = api.spawn(U1, {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:20:00"})
        assert r.status_code in (201, 202), r.text
        api.wait_ready(U1, 60)

        # The server handler answers with the server's own token: same figures as the service.
        token = api.post(f"/users/{U1}/tokens", json={"note": "lab test"}).json()["token"]
        envelope = api.through_proxy(U1, "fedhub/api/quota", token=token).json()
        assert envelope["available"] and envelope["centre"] == "alpha" and envelope["centre_name"] == "Alpha"
        assert {c["centre"] for c in envelope["quota"]["centres"]} == {"alpha", "gamma"}

        page = log_in(browser, hub, U1, f"/user/{U1}/lab")
        before = service_report(hub, U1)["alpha"]
        # A new user's first lab asks nothing about "official Jupyter news" (the plugin is disabled
        # in the notebook environment FedHub installs).
        config = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent)")
        assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
        text = status_text(page)
        after = service_report(hub, U1)["alpha"]
        expected = {f"Alpha: {hours(f['core_hours']['remaining'])} core-h left "
                    f"({round(f['core_hours']['percent'] or 0)}% used)" for f in (before, after)}
        assert text in expected
        assert "fedhub-level-ok" in page.get_attribute("#fedhub-quota-status", "class")
        assert page.locator(".Toastify__toast", has_text="Jupyter news").count() == 0

        # Clicking opens the panel: every centre, each figure as the service reads it.
        page.click("#fedhub-quota-status")
        panel = page.locator("#fedhub-quota-panel")
        panel.wait_for(state="visible")
        figures = service_report(hub, U1)
        for centre in ("alpha", "gamma"):
            section = panel.locator(f"section[data-centre={centre}]")
            section.wait_for()
            core = section.locator(".fedhub-bar-row[data-kind='core-h'] .fedhub-bar-figure").inner_text()
            used, limit = figures[centre]["core_hours"]["used"], figures[centre]["core_hours"]["limit"]
            assert core.startswith(f"{hours(used)} ") or core.startswith(f"{hours(used + 0.05)} "), core
            assert (f"of {hours(limit)} core-h" in core) if limit else core.endswith("used, no limit")
            assert "read " in section.locator(".fedhub-centre-meta").inner_text()
        storage = panel.locator("section[data-centre=gamma] .fedhub-bar-row[data-kind='GB'] .fedhub-bar-figure")
        gamma_storage = figures["gamma"]["storage_gb"]
        assert storage.inner_text() == f"{hours(gamma_storage['used'])} of {hours(gamma_storage['limit'])} GB"
        assert "(this server)" in panel.locator("section[data-centre=alpha] h3").inner_text()
        # the thresholds are the federation file's (75 and 97 in the test federation)
        assert "Warnings at 75% and 97% used." in panel.locator(".fedhub-panel-note").inner_text()

        # quota() in a notebook: the same table, from the kernel.
        nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                         "source": "from fedhub_lab import quota\nquota()"}],
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
              "nbformat": 4, "nbformat_minor": 5}
        r = requests.put(f"{hub.url}/user/{U1}/api/contents/fedhub-quota-test.ipynb", timeout=30,
                         headers={"Authorization": f"token {token}"}, json={"type": "notebook", "content": nb})
        assert r.status_code in (200, 201), r.text
        page.goto(f"{hub.url}/user/{U1}/lab/tree/fedhub-quota-test.ipynb")
        dialog = page.locator(".jp-Dialog")
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.wait_for()
        assert dialog.count() == 0, dialog.first.inner_text()
        # a cell run before the kernel is connected is dropped: wait for the kernel like a user would
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for()
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        table = page.locator(".jp-NotebookPanel .jp-OutputArea .fedhub-quota-table")
        try:
            table.wait_for(timeout=60_000)
        except Exception:
            page.screenshot(path="/tmp/fedhub-lab-test-failure.png")
            raise AssertionError("no quota table in the notebook (screenshot: /tmp/fedhub-lab-test-failure.png)")
        rows = {row.locator("td").first.inner_text(): row for row in table.locator("tr").all()[1:]}
        assert set(rows) == {"Alpha (this server)", "Gamma"}
        limit_h = service_report(hub, U1)["alpha"]["core_hours"]["limit"]
        assert f"of {limit_h:.1f} core-h" in rows["Alpha (this server)"].locator("td").nth(1).inner_text()
        assert "fedhub-level-ok" in (rows["Alpha (this server)"].get_attribute("class") or "")
        page.goto(f"{hub.url}/user/{U1}/lab")

        # Nearly used up: a limit at which the usage so far is about 85%. The lab warns on its next read.
        wait_for(lambda: slurm(centres, "alpha", "squeue", "-h", "-j", usage_job) == "", 120,
                 "the usage job to end")
        time.sleep(4)  # the service's cache (max-age 3 s) reads the finished job
        # figures read now, not the cache's last (a busy suite may have left it a read behind)
        used_minutes = service_report(hub, U1, fresh=True)["alpha"]["core_hours"]["used"] * 60
        # Slurm's limits are whole core-minutes: the nearest one at which the usage is about 86%
        # (the warning band is 75-97%; the server's own CPU keeps adding a little)
        limit = round(used_minutes / 0.86)
        assert 0.75 <= used_minutes / limit < 0.95, (used_minutes, limit)
        set_core_minutes(centres, limit)
        # the service answers from its cache and refreshes behind it: ask until it has read the limit
        wait_for(lambda: service_report(hub, U1)["alpha"]["core_hours"]["limit"] == limit / 60 or None, 20,
                 "the service to read the new limit", 1)
        assert service_report(hub, U1)["alpha"]["level"] == "warn"
        page.reload()
        text = status_text(page)
        assert text.startswith("Alpha: ") and "core-h left" in text
        assert "fedhub-level-warn" in page.get_attribute("#fedhub-quota-status", "class")
        toast = page.locator(".Toastify__toast", has_text="of your allocation at Alpha")
        toast.wait_for()
        assert "You have used" in toast.inner_text() and "core-h left" in toast.inner_text()
    finally:
        set_core_minutes(centres, -1)
        requests.delete(f"{hub.url}/user/{U1}/api/contents/fedhub-quota-test.ipynb", timeout=30,
                        headers={"Authorization": f"token {hub.api_token}"})
        slurm(centres, "alpha", "scancel", usage_job)


def test_when_the_quota_service_stops_answering_the_lab_says_so_and_the_hub_keeps_working(
        api, hub, browser):
    api.spawn(U1, {"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:10:00"})
    api.wait_ready(U1, 60)
    page = log_in(browser, hub, U1, f"/user/{U1}/lab")
    assert status_text(page).startswith("Gamma: ")
    pid = quota_service_pid(hub)
    os.kill(pid, signal.SIGSTOP)  # a hung service: it accepts connections but never answers
    try:
        page.reload()
        item = page.locator("#fedhub-quota-status")
        wait_for(lambda: "not answering" in item.inner_text() or None, 30, "the lab to say the service is down")
        assert "fedhub-level-unavailable" in item.get_attribute("class")
        page.click("#fedhub-quota-status")
        message = page.locator("#fedhub-quota-panel .fedhub-unavailable").inner_text()
        assert message.startswith("Allocations are not available: the quota service at ")
        # The hub and the user's server are unaffected.
        assert api.get(f"/users/{U1}").status_code == 200
        assert api.through_proxy(U1).status_code == 200
    finally:
        os.kill(pid, signal.SIGCONT)
    page.locator("#fedhub-quota-panel .fedhub-refresh").click()
    wait_for(lambda: page.locator("#fedhub-quota-status").inner_text().startswith("Gamma: ") or None, 30,
             "the lab to show figures again once the service answers")



def test_in_chromium_a_server_started_in_chinese_opens_the_lab_and_fedhubs_words_in_chinese(api, hub, browser):
    """Issue 26: a spawn asked in Chinese starts a lab whose own menus (the language pack) and
    FedHub's items (its zh_CN catalogue) are Chinese even in an English browser, and the hub's
    refusals reach the lab in the lab's language, not the browser's."""
    r = api.post(f"/users/{U1}/server", json={"centre": "gamma", "cores": 1, "memory": "512M",
                                              "walltime": "00:10:00"}, headers={"Accept-Language": "zh-CN"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(U1, 60)
    token = api.post(f"/users/{U1}/tokens", json={"note": "zh lab test"}).json()["token"]
    auth = {"Authorization": f"token {token}"}
    nb = {"cells": [], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    r = requests.put(f"{hub.url}/user/{U1}/api/contents/fedhub-zh-test.ipynb", timeout=30, headers=auth,
                     json={"type": "notebook", "content": nb})
    assert r.status_code in (200, 201), r.text
    context = browser.new_context(locale="en-US")
    page = None
    try:
        page = log_in(context, hub, U1, f"/user/{U1}/lab")
        # JupyterLab itself, from the language pack: the File menu is 文件
        page.locator(".lm-MenuBar-itemLabel", has_text="文件").wait_for()
        assert page.locator(".lm-MenuBar-itemLabel", has_text="File").count() == 0
        # FedHub's status bar items and panel, from fedhub_lab's catalogue
        text = status_text(page)
        assert text.startswith("Gamma：") and "核时" in text and "core-h" not in text, text
        time_left = page.locator("#fedhub-time-left")
        wait_for(lambda: "剩余" in time_left.inner_text() or None, 20, "the time left in Chinese")
        page.click("#fedhub-quota-status")
        note = page.locator("#fedhub-quota-panel .fedhub-panel-note")
        note.wait_for()
        assert note.inner_text() == "此服务器运行在 Gamma。用量达到 75% 和 97% 时提醒。"
        assert "（此服务器）" in page.locator("#fedhub-quota-panel section[data-centre=gamma] h3").inner_text()
        figure = page.locator("#fedhub-quota-panel .fedhub-bar-row[data-kind='core-h'] .fedhub-bar-figure").first
        assert "核时" in figure.inner_text() and "core-h" not in figure.inner_text(), figure.inner_text()
        # the hub checks a kernel's request and refuses in the lab's language (the browser says en-US)
        page.goto(f"{hub.url}/user/{U1}/lab/tree/fedhub-zh-test.ipynb")
        page.locator(".jp-NotebookPanel").wait_for()
        page.locator(".lm-MenuBar-itemLabel", has_text="内核").click()  # the Kernel menu
        page.locator(".lm-Menu-itemLabel", has_text="在其他中心运行内核…").click()
        dialog = page.locator(".jp-Dialog", has_text="在其他中心运行内核")
        dialog.locator("select[name=centre]").select_option("gamma")
        assert "核数" in dialog.inner_text() and "运行时限" in dialog.inner_text()
        dialog.locator("input[name=cores]").fill("99")
        dialog.get_by_role("button", name="启动内核").click()
        page.locator(".jp-Dialog", has_text="cores：99 超出了 Gamma 的分区 'small' 允许的范围").wait_for()
    except Exception:
        if page is not None:
            page.screenshot(path="/tmp/fedhub-lab-zh-failure.png")
        raise
    finally:
        context.close()
        requests.delete(f"{hub.url}/user/{U1}/api/contents/fedhub-zh-test.ipynb", timeout=30, headers=auth)
