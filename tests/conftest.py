"""Fixtures: real Slurm centres on loopback (the demo's own code) and a real JupyterHub.

The centres: alpha (local, 4 CPUs), beta (firewalled: reached only through its ssh login node,
its compute node in a private network namespace; 4 CPUs), gamma (local,
2 CPUs, easy to fill; each job its own /tmp, as with Slurm's job_container/tmpfs); alpha and gamma keep accounts in a real slurmdbd (enforced associations
and limits). ``broken`` is a fourth federation entry pointing at gamma's cluster
with a notebook command that does not exist, so its jobs die at once."""
from __future__ import annotations
import json
import os
import secrets
import shutil
import pytest
import requests
import yaml
from fedhub_testbed.centres import LocalFederation, free_port
from fedhub_testbed.hub import LocalHub
from helpers.support import CHROMIUM, CHROMIUM_ARGS
from helpers.lab import LAB_USER, NOTEBOOKS, forget_workspaces, log_in
from helpers.testbed import (CLASSROOM, HUB_CONFIG, JOBENV, LOCAL_LOGINS, TEST_HUB_CONFIG, TEST_USERS, HubAPI, centre_entry,
                             centre_specs, live_jobs, squeue, wait_for)

@pytest.fixture(scope="session")
def unix_users():
    """Real Unix accounts for the logins of the pure tests' local centre (login rules read them)."""
    if os.geteuid() != 0:
        pytest.skip("creating the test logins needs root (run `make test` as root)")
    from fedhub_testbed.centres import ensure_unix_user
    for name in LOCAL_LOGINS:
        ensure_unix_user(name)
    return LOCAL_LOGINS

@pytest.fixture(scope="session")
def centres(request):
    if os.geteuid() != 0:
        pytest.skip("the Slurm centres need root (run `make test` as root)")
    hub_port = free_port()
    fed = LocalFederation(centre_specs(), singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser", users=TEST_USERS)
    with fed:
        doc = fed.federation_document()
        alpha = centre_entry(doc, "alpha")
        alpha["partitions"] = [p for p in alpha["partitions"] if p["name"] != CLASSROOM]
        broken = json.loads(json.dumps(next(c for c in doc["centres"] if c["id"] == "gamma")))
        broken.update(id="broken", name="Broken", singleuser_cmd="/nonexistent/bin/jupyterhub-singleuser")
        broken["partitions"] = [dict(p, charge_rate=5.0) for p in broken["partitions"]]  # chosen last
        broken.pop("accounting", None)  # slurmdbd knows the cluster as gamma
        doc["centres"].append(broken)
        doc["allocation_warnings"] = {"warn_percent": 75, "critical_percent": 97}  # not the defaults
        # alpha's nodes reach the hub by another name than the hub's own API URL (127.0.0.1)
        centre_entry(doc, "alpha")["hub_connect_url"] = f"http://localhost:{hub_port}"
        fed.federation_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        fed.hub_port = hub_port
        yield fed
    if request.session.testsfailed == 0:  # the daemons', hubs' and jobs' logs stay only for a failure
        shutil.rmtree(fed.root, ignore_errors=True)
    else:
        print(f"\nThe centres' and hubs' logs are kept in {fed.root}")

@pytest.fixture(scope="session")
def postgres(centres):
    """A real PostgreSQL server (Debian's) for the hubs' databases, as a deployment has."""
    from fedhub_testbed.postgres import LocalPostgres
    with LocalPostgres(centres.root / "postgres") as server:
        yield server

@pytest.fixture(scope="session")
def hub(centres, postgres):
    """The session's hub, keeping its database in PostgreSQL."""
    token = secrets.token_hex(24)
    hub = LocalHub(centres.federation_file, centres.root / "hub", config_file=HUB_CONFIG, hub_port=centres.hub_port,
                   users=TEST_USERS, password="fedhub-test", api_token=token, extra_config=TEST_HUB_CONFIG,
                   db_url=postgres.database("fedhub_session"))
    hub.start()
    api = HubAPI(hub)
    for user in TEST_USERS:
        api.post(f"/users/{user}")
    yield hub
    hub.stop()

@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()

@pytest.fixture
def api(hub, centres):
    api = HubAPI(hub)
    yield api
    # leave nothing running for the next test, and say so if a test leaked
    for user in TEST_USERS:
        if api.server(user) is not None:
            api.stop(user)
    for centre in centres.centres.values():
        centre.cancel_all_jobs()

def pytest_collection_modifyitems(items):
    # pure tests first: they fail fast and need no cluster
    items.sort(key=lambda item: "centres" in getattr(item, "fixturenames", ()))


@pytest.fixture
def lab(hub, centres, browser):
    """The lab user's server at alpha and their lab open in Chromium (a fresh workspace); at the end
    its notebooks, workspace, server and every kernel job are gone."""
    api = HubAPI(hub)
    r = api.spawn(LAB_USER, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:30:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(LAB_USER, 90)
    token = api.post(f"/users/{LAB_USER}/tokens", json={"note": "kernel lab test"}).json()["token"]
    # a fresh workspace: the launcher, no notebook of an earlier test reopened (and its kernel started)
    forget_workspaces(hub, token)
    page = log_in(browser, hub, LAB_USER, f"/user/{LAB_USER}/lab")
    page.locator("#jp-main-statusbar").wait_for()
    yield api, token, page
    page.close()
    forget_workspaces(hub, token)  # nor do this test's notebooks reopen in a later test's lab
    for name in NOTEBOOKS:
        requests.delete(f"{hub.url}/user/{LAB_USER}/api/contents/{name}", headers={"Authorization": f"token {token}"},
                        timeout=30)
    api.stop(LAB_USER)
    assert live_jobs(centres, "beta", LAB_USER) == [] and live_jobs(centres, "alpha", LAB_USER) == []
    # and gone, not completing: the next test's blocker needs the whole node
    wait_for(lambda: squeue(centres, "beta", LAB_USER) == [], 30, "the kernel's job to leave beta's queue")
