"""`fedhub centres` and `fedhub demo` as an operator and a newcomer use them."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from helpers.languages import english_left
from helpers.testbed import HUB_CONFIG, REPO, wait_for
from fedhub_testbed.centres import free_port

FEDHUB = [sys.executable, "-m", "fedhub.cli"]


def test_centres_json_and_table(centres):
    out = subprocess.run([*FEDHUB, "centres", "-f", str(centres.federation_file), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)["centres"]}
    assert set(rows) == {"alpha", "beta", "gamma", "broken"}
    alpha, beta = rows["alpha"], rows["beta"]
    assert alpha["reachable"] and alpha["slurm_conf"] == str(centres.centres["alpha"].conf)
    assert alpha["cpus"]["total"] == 4 and alpha["nodes"]["total"] == 1 and alpha["partitions"] == ["cpu", "debug"]
    assert beta["reachable"] and beta["route"] == "ssh" and "slurm_conf" not in beta
    network = centres.centres["beta"].network
    assert beta["login_node"] == f"{network.login_address}:{centres.centres['beta'].ssh_port}"
    assert (beta["network"], beta["connection"]) == (
        {"mode": "tunnel", "login_node_address": network.login_inner_address}, "connected")
    assert alpha["network"] == {"mode": "direct"} and "connection" not in alpha
    table = subprocess.run([*FEDHUB, "centres", "-f", str(centres.federation_file)],
                           capture_output=True, text=True, timeout=60).stdout
    assert table.splitlines()[0].split()[:2] == ["CENTRE", "STATE"]
    assert any(line.startswith("beta") and "up (" in line and "batch" in line and line.endswith("tunnel (connected)")
               for line in table.splitlines())


def test_centres_shows_a_down_controller(centres):
    gamma = centres.centres["gamma"]
    gamma.stop_controller()
    try:
        out = subprocess.run([*FEDHUB, "centres", "-f", str(centres.federation_file), "--timeout", "20"],
                             capture_output=True, text=True, timeout=90)
    finally:
        gamma.start_controller()
    assert out.returncode == 1
    line = next(line for line in out.stdout.splitlines() if line.startswith("gamma "))
    assert "DOWN" in line
    assert "gamma: gamma: controller did not answer sinfo: Unable to contact slurm controller" in out.stdout
    wait_for(lambda: gamma.node_state().startswith(("idle", "mixed")), 30, "gamma to answer again")


def test_check_reports_a_bad_file(tmp_path):
    bad = tmp_path / "f.yaml"
    bad.write_text("version: 1\ncentres:\n  - id: A\n")
    out = subprocess.run([*FEDHUB, "check", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert f"fedhub: {bad}: centres[0].id: 'A' is not allowed" in out.stderr


def test_check_says_how_to_pin_a_login_nodes_host_key(tmp_path):
    """Defect B8: host keys are pinned; `fedhub check` tells the operator how to make the file."""
    from helpers.federations import GOOD
    import yaml
    doc = json.loads(json.dumps(GOOD))
    doc["centres"][1]["scheduler"]["known_hosts_file"] = str(tmp_path / "known_hosts")
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = subprocess.run([*FEDHUB, "check", str(path)], capture_output=True, text=True)
    assert out.returncode == 1
    assert f"south: the pinned host keys file {tmp_path / 'known_hosts'} does not exist. Make it with" in out.stdout
    assert f"ssh-keyscan login.south > {tmp_path / 'known_hosts'}" in out.stdout
    (tmp_path / "known_hosts").write_text("login.south ssh-ed25519 AAAA\n")
    out = subprocess.run([*FEDHUB, "check", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("OK, 2 centres")


def test_a_second_demo_refuses_and_leaves_the_first_ones_files(tmp_path):
    """Defect B9: a second `make demo` wiped the running demo's directory."""
    import fcntl
    state = tmp_path / "demo"
    (state / "hub").mkdir(parents=True)
    (state / "hub" / "jupyterhub.sqlite").write_text("the first demo's database")
    with open(tmp_path / "demo.lock", "w") as lock:  # what a running demo holds
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242")
        lock.flush()
        out = subprocess.run([*FEDHUB, "demo", "--state-dir", str(state), "--hub-config", str(HUB_CONFIG)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"another demo (pid 4242) is running in {state}" in out.stderr
    assert (state / "hub" / "jupyterhub.sqlite").read_text() == "the first demo's database"


def readme_blocks() -> list[str]:
    """The README's ```sh blocks."""
    return [part.split("```", 1)[0] for part in (REPO / "README.md").read_text().split("```sh\n")[1:]]


def readme_script_block() -> list[str]:
    """The commands of the README's "drive the demo from scripts" block, joined across '\\'
    line ends, without the two that set up the demo (the test starts it itself)."""
    text = (REPO / "README.md").read_text()
    block = text.split("To drive the demo from scripts", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.replace("\\\n", " ").splitlines()
    return [c for c in commands if c.strip() and not c.startswith(("export FEDHUB_API_TOKEN", "make demo"))]


def test_demo_starts_everything_and_ctrl_c_stops_everything(centres, tmp_path):
    """`fedhub demo` (what `make demo` runs), on its own ports and directory."""
    state = Path(tempfile.mkdtemp(prefix="fedhub-demo-test-", dir="/tmp"))  # users must reach it
    port, hub_port, token = free_port(), free_port(), secrets.token_hex(16)
    env = {**os.environ, "FEDHUB_API_TOKEN": token, "FEDHUB_DEMO_PASSWORD": "pw-demo"}
    log = open(tmp_path / "demo.log", "w")
    proc = subprocess.Popen([*FEDHUB, "demo", "--hub-config", str(HUB_CONFIG), "--port", str(port), "--hub-port", str(hub_port),
                             "--oidc-port", str(free_port()), "--state-dir", str(state)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "Press Ctrl-C" in (tmp_path / "demo.log").read_text(), 90, "the demo's banner", 0.5)
        banner = (tmp_path / "demo.log").read_text()
        assert f"FedHub demo is running at http://127.0.0.1:{port}" in banner
        assert "Log in as alice or bob with password: pw-demo" in banner
        assert "以 alice 或 bob 登录，密码：pw-demo" in banner  # and in Chinese (issue 26)
        assert f"FedHub 演示正在运行：http://127.0.0.1:{port}" in banner
        assert "the demo's OpenID Connect provider at http://127.0.0.1:" in banner
        assert "Hub database:     PostgreSQL at 127.0.0.1:" in banner  # as with the Helm chart
        assert f"carol teaches demo-class (alice and bob are its students; same password): the class\n" \
               f"  dashboard is http://127.0.0.1:{port}/services/fedhub-classes/" in banner
        # the demo class, with the reservation the hub made for its session at alpha
        admin = {"Authorization": f"token {token}"}

        def reservations():
            r = requests.get(f"http://127.0.0.1:{port}/services/fedhub-classes/api/classes/demo-class",
                             headers=admin, timeout=10)
            return r.status_code == 200 and r.json()["reservations"]
        [made] = wait_for(reservations, 60, "the demo class's reservation")
        until, note = made.pop("until"), made.pop("note")
        assert time.strftime("%Y-%m-%dT%H:%M:%S") < until, until  # the session's end, still ahead
        assert note == ""  # no refusal to report
        assert made == {"name": "fedhub-demo-class", "centre": "alpha", "centre_name": "Alpha Supercomputing Centre",
                        "state": "active", "made_by_hub": True}
        # the README's scripted block, as written, before anyone has logged in (issue 21, finding 11):
        # alice's login at beta comes from the federation file's template, so no login is needed first
        for command in readme_script_block():
            command = command.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}") \
                .replace("/tmp/fedhub-demo", str(state))
            run = subprocess.run(["bash", "-c", command], env=env, cwd=REPO, capture_output=True, text=True,
                                 timeout=120)
            assert run.returncode == 0, (command, run.stdout, run.stderr)
            if "/progress" in command:
                assert '"ready": true' in run.stdout, run.stdout[-500:]
            elif "-X POST" in command:
                assert '"message"' not in run.stdout, run.stdout  # no refusal
            if "fedhub centres" in command:
                assert "beta" in run.stdout, run.stdout
        # the login works at once, through the federation's provider; alice is a student of the class
        # (her server runs already, from the README's block: her login opens her lab)
        s = requests.Session()
        page = s.get(f"http://127.0.0.1:{port}/hub/oauth_login", timeout=30)
        assert "Federation login" in page.text, page.text
        form = page.url + "/login"  # the provider's login page posts to itself
        r = s.post(form, data={"login": "alice", "password": "pw-demo"}, timeout=30)
        assert r.url.endswith("/user/alice/lab"), r.url
        # FEDHUB_API_TOKEN is an admin token
        users = requests.get(f"http://127.0.0.1:{port}/hub/api/users",
                             headers={"Authorization": f"token {token}"}, timeout=10)
        assert users.status_code == 200
        # alice's server at the ssh centre (the README's block) gives Ctrl-C a job to clean up;
        # bob's class start, in the reservation
        login_bob = requests.Session()
        page = login_bob.get(f"http://127.0.0.1:{port}/hub/oauth_login", timeout=30)
        r = login_bob.post(page.url + "/login", data={"login": "bob", "password": "pw-demo"}, timeout=30)
        assert r.url.endswith("/hub/spawn") and 'name="centre"' in r.text, (r.url, r.text[:500])
        assert "Start for Notebooks on HPC (demo class)" in r.text
        # bob starts for the class with one click, and walks the demo in Chinese (issue 26)
        walk_the_demo_in_chinese(f"http://127.0.0.1:{port}", admin)
        for user in ("alice", "bob"):
            wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/hub/api/users/{user}", timeout=10,
                                          headers=admin).json()["servers"].get("", {}).get("ready"),
                     60, f"{user}'s demo server")
        # bob joined the class at his first login, moments ago: admitted to alpha's reservation before
        # placement asked Slurm, so he runs there (the cheaper of the class's centres), inside it
        roster = requests.get(f"http://127.0.0.1:{port}/services/fedhub-classes/api/classes/demo-class",
                              headers=admin, timeout=10).json()
        assert {s["name"]: s["centre"] for s in roster["students"]}["bob"] == "alpha", roster
        # carol hands out her day1 and collects it; alice's server, which records every token it
        # receives, got only tokens that open nothing else (the README's block, as written)
        r = requests.post(f"http://127.0.0.1:{port}/hub/api/users/carol/server", headers=admin, timeout=60,
                          json={"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:10:00"})
        assert r.status_code in (201, 202), r.text
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/hub/api/users/carol", timeout=10,
                                      headers=admin).json()["servers"].get("", {}).get("ready"), 60, "carol's server")
        carol = {"Authorization": "token " + requests.post(f"http://127.0.0.1:{port}/hub/api/users/carol/tokens",
                                                          headers=admin, json={"note": "demo test"}, timeout=10).json()["token"]}
        service = f"http://127.0.0.1:{port}/services/fedhub-classes/api/classes/demo-class"
        assert requests.post(f"{service}/handout", json={"folder": "day1"}, headers=carol, timeout=60).status_code == 202

        def materials(student):
            return {s["name"]: s["materials"] for s in requests.get(service, headers=carol, timeout=30).json()["students"]}[student]
        wait_for(lambda: materials("alice") == "has day1", 30, "alice's copy of day1")
        assert requests.post(f"{service}/collect", json={"folder": "day1"}, headers=carol, timeout=60).status_code == 202
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/user/carol/api/contents/collected/day1/alice/welcome.ipynb",
                                      headers=admin, timeout=30).status_code == 200, 30, "alice's copy collected")
        # the README's continue block, as written: alice's session moves from beta (behind its login
        # node) to gamma; the same address then reaches her server at gamma, and beta's job ends
        (block,) = [b for b in readme_blocks() if "server/continue" in b]
        run = subprocess.run(["bash", "-c", block.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")],
                             env=env, capture_output=True, text=True, timeout=60)
        started, _ = json.JSONDecoder().raw_decode(run.stdout)  # the POST's answer; the GET's list follows
        assert started["status"] == "queued" and started["centre"] == "gamma", run.stdout
        done = wait_for(lambda: (c := requests.get(f"http://127.0.0.1:{port}{started['url']}", headers=admin,
                                                   timeout=10).json())["status"] in ("done", "failed") and c,
                        120, "alice's session to continue at gamma", 1)
        assert done["status"] == "done", done
        where = requests.get(f"http://127.0.0.1:{port}/hub/api/fedhub/users/alice/servers", headers=admin,
                             timeout=10).json()["servers"]
        assert [s["centre"] for s in where] == ["gamma"], where
        # the same address reaches a live server at gamma (asked without a token: alice's demo server
        # records every token it receives, and the README's block below tries the last one)
        reached = requests.get(f"http://127.0.0.1:{port}/user/alice/api/status", timeout=10, allow_redirects=False)
        assert reached.status_code in (302, 403) and "jupyterhub" not in reached.headers.get("Server", "").lower(), \
            (reached.status_code, reached.headers)
        (block,) = [b for b in readme_blocks() if "received-tokens.txt" in b]
        run = subprocess.run(["bash", "-c", block.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")],
                             capture_output=True, text=True, timeout=60)
        assert run.stdout.split() == ["403", "403"], (run.stdout, run.stderr)
        pids = [int(p.read_text()) for p in state.glob("*/slurm*.pid")] + [int(p.read_text()) for p in state.glob("ssh/*/sshd.pid")]
        pids.append(int((state / "accounting" / "run" / "mysql.pid").read_text()))
        pids.append(int((state / "postgres" / "data" / "postmaster.pid").read_text().split()[0]))
        assert len(pids) == 11  # 3 x (slurmctld, slurmd) + slurmdbd + MariaDB + 2 login nodes + PostgreSQL
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(90)
    assert "Everything the demo started has stopped." in (tmp_path / "demo.log").read_text()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    for user in ("alice", "bob"):
        user_jobs = subprocess.run(["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True, text=True)
        assert user_jobs.stdout.strip() == ""
    time.sleep(0.5)
    try:
        requests.get(f"http://127.0.0.1:{port}/hub/api", timeout=2)
        raise AssertionError("the demo's proxy still answers after Ctrl-C")
    except requests.ConnectionError:
        pass
    shutil.rmtree(state, ignore_errors=True)


def no_english(page, where: str) -> None:
    left = english_left(page.locator("body").inner_text())
    assert left == [], f"{where}: FedHub's English on a Chinese page: {left}"


def federation_log_in(context, url: str, user: str, next_path: str):
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{url}/hub/login?next={next_path}")
    page.click("#fedhub-sign-in")  # "Sign in with the federation's login", in the page's language
    page.fill("#login", user)
    page.fill("#password", "pw-demo")
    page.click("#login-submit")
    return page


def walk_the_demo_in_chinese(url: str, admin: dict) -> None:
    """The demo as a Chinese browser meets it: login, the spawn form, the class's one click, the
    progress, the lab's status bar and allocation panel, a kernel moved with its variables to
    another centre, and the teacher's dashboard, with none of FedHub's English left; then the
    same dashboard in an English browser."""
    from playwright.sync_api import sync_playwright

    from helpers.support import CHROMIUM, CHROMIUM_ARGS
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "source": "n = 42\ngen = (i for i in range(3))"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = None
        try:
            zh = browser.new_context(locale="zh-CN")
            page = zh.new_page()
            page.goto(f"{url}/hub/login")
            assert page.locator("#fedhub-sign-in").inner_text().strip() == "使用联盟账号登录"
            assert page.locator("html").get_attribute("lang") == "zh-CN"
            page.close()
            page = federation_log_in(zh, url, "bob", "/hub/spawn")
            page.wait_for_url(f"{url}/hub/spawn**")
            form = page.locator("#fedhub-form")
            assert "中心" in form.inner_text() and "核数" in form.inner_text()
            offer = page.locator("#fedhub-class-demo-class").inner_text()  # the class's resources and reservation
            assert "1 核，1G 内存，位于" in offer and "的预留 fedhub-demo-class：生效中" in offer and "memory" not in offer, offer
            no_english(page, "the spawn form")
            page.get_by_role("button", name="为 Notebooks on HPC (demo class) 启动").click()
            # the progress page's log, in Chinese, until the lab replaces it
            page.locator(".progress-log-event", has_text="已提交到 Alpha").wait_for(state="attached", timeout=60_000)
            said = " ".join(page.locator(".progress-log-event").all_text_contents())
            assert english_left(said) == [], said
            page.wait_for_url(f"{url}/user/bob/lab**", timeout=120_000)
            # the lab: JupyterLab's words and FedHub's status bar and panel
            page.locator(".lm-MenuBar-itemLabel", has_text="文件").wait_for()
            status = page.locator("#fedhub-quota-status")
            wait_for(lambda: "核时" in status.inner_text() or None, 30, "the allocation in the status bar")
            status.click()
            page.locator("#fedhub-quota-panel .fedhub-panel-note").wait_for()
            no_english(page, "the lab with its allocation panel")
            assert "core-h" not in page.locator("#fedhub-quota-panel").inner_text()  # the unit too: 核时
            # a kernel moves with its variables to another centre; what cannot move is named
            r = requests.put(f"{url}/user/bob/api/contents/languages.ipynb", headers=admin, timeout=30,
                             json={"type": "notebook", "content": nb})
            assert r.status_code in (200, 201), r.text
            page.goto(f"{url}/user/bob/lab/tree/languages.ipynb")
            page.locator("#fedhub-kernel-centre", has_text="内核位于 Alpha").wait_for(timeout=60_000)
            page.locator(".jp-StatusBar-TextItem", has_text="| 空闲").wait_for(timeout=60_000)
            page.locator(".jp-NotebookPanel .jp-Cell").first.locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            page.locator(".jp-InputPrompt", has_text="[1]:").wait_for()
            page.locator("#fedhub-kernel-centre").click()
            dialog = page.locator(".jp-Dialog", has_text="将内核迁移到中心")
            dialog.locator("select[name=centre]").select_option("gamma")
            no_english(page, "the move dialog")
            dialog.get_by_role("button", name="迁移", exact=True).click()
            choice = page.locator(".jp-Dialog", has_text="不带这些对象")
            choice.wait_for(timeout=90_000)
            assert "gen：运行中的生成器或协程：其暂停的帧无法复制" in choice.inner_text()
            no_english(page, "what cannot move")
            choice.get_by_role("button", name="仍然切换").click()
            page.locator(".Toastify__toast", has_text="内核已迁移到 Gamma").wait_for(timeout=90_000)
            page.locator("#fedhub-kernel-centre", has_text="内核位于 Gamma").wait_for(timeout=30_000)
            no_english(page, "the lab after the move")
            for kernel in requests.get(f"{url}/user/bob/api/kernels", headers=admin, timeout=30).json():
                requests.delete(f"{url}/user/bob/api/kernels/{kernel['id']}", headers=admin, timeout=60)
            requests.delete(f"{url}/user/bob/api/contents/languages.ipynb", headers=admin, timeout=30)
            page.close()
            # carol's dashboard, in Chinese, then in an English browser
            page = federation_log_in(browser.new_context(locale="zh-CN"), url, "carol", "/services/fedhub-classes/")
            page.wait_for_url(f"{url}/services/fedhub-classes/**")
            page.locator("#fh-stop-all", has_text="全部停止").wait_for()
            page.locator("#fh-roster tr[data-student=bob] .fh-state", has_text="运行中").wait_for()
            no_english(page, "the class dashboard")
            page.close()
            en = browser.new_context(locale="en-US")
            page = federation_log_in(en, url, "carol", "/services/fedhub-classes/")
            page.locator("#fh-stop-all", has_text="Stop all").wait_for()
            assert page.locator("html").get_attribute("lang") == "en"
        except Exception:
            if page is not None and not page.is_closed():
                page.screenshot(path="/tmp/fedhub-demo-walk-failure.png")
            raise
        finally:
            browser.close()


def test_hub_refuses_to_start_with_a_bad_federation_file(tmp_path):
    """The operator sees the bad field's path and the fix when the hub starts, not at a spawn."""
    import pytest
    from fedhub_testbed.hub import LocalHub
    bad = tmp_path / "federation.yaml"
    bad.write_text("version: 1\ncentres:\n  - id: alpha\n    name: A\n    scheduler: {type: pbs}\n")
    hub = LocalHub(bad, tmp_path / "hub", config_file=HUB_CONFIG)
    with pytest.raises(RuntimeError) as info:
        hub.start(timeout=30)
    assert f"FedHub cannot start: {bad}: centres[0].scheduler.type: 'pbs' is not a scheduler route; " \
           "use 'local' or 'ssh'" in str(info.value)
