"""Files follow the user (issue 25): what a user's server changed in the workspace at one centre
is recorded when it stops, and brought to the next centre while that server's job waits in the
queue, so the lab opens with the files; a file changed at two centres keeps both versions.

Beta and gamma have homes of their own (alpha's is this machine's): nothing written at alpha is
seen there unless FedHub carries it, and nothing outside the workspace is carried.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

from helpers.moves import Server
from helpers.testbed import TEST_USERS, HubAPI, blocker, live_jobs, slurm, wait_for

USER, OTHER = TEST_USERS[0], TEST_USERS[2]  # each test its own user: the hub's index of them is the session's
MB = 1024 * 1024


def as_user(script: str, user: str = USER) -> None:
    """What the user does in a terminal of their server at alpha (this machine's /home)."""
    subprocess.run(["runuser", "-u", user, "--", "/bin/sh", "-c", script], check=True)


def forget(centres, user: str) -> None:
    """The user's workspace gone at every centre (as the user, each centre's home as this machine sees it)."""
    for centre in centres.centres.values():
        as_user(f"rm -rf {centre.home_of(user)}/fedhub {centre.home_of(user)}/outside.txt", user)


def sha(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def test_a_workspace_written_at_alpha_is_at_gamma_and_beta_when_their_labs_open(hub, centres):
    api = HubAPI(hub)
    alpha, gamma, beta = (centres.centres[c].home_of(USER) for c in ("alpha", "gamma", "beta"))
    forget(centres, USER)
    try:
        assert api.spawn(USER, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:20:00"}).status_code \
            in (201, 202)
        api.wait_ready(USER, 90)
        token = api.post(f"/users/{USER}/tokens", json={"note": "workspace"}).json()["token"]
        notebook = {"type": "notebook", "format": "json",
                    "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
        r = Server(hub, USER, token).call("PUT", "api/contents/analysis.ipynb", json=notebook)
        assert r.status_code in (200, 201), r.text
        as_user("head -c 52428800 /dev/urandom > ~/fedhub/data.bin && echo mine > ~/outside.txt && "
                "truncate -s 101M ~/fedhub/dataset.bin")  # over the large-file size: listed, left at alpha
        api.stop(USER)  # the stop records alpha's workspace

        # gamma is full for now: the server's job waits, and the files come meanwhile
        held = blocker(centres, "gamma", 2, 10)
        assert api.spawn(USER, {"centre": "gamma", "cores": 1, "memory": "1G", "walltime": "00:20:00"}).status_code \
            in (201, 202)
        messages = api.progress(USER, until=lambda e: "large file" in e.get("message", ""), timeout=90)
        assert "Bringing 2 files (52 MB) from Alpha: 0%" in messages, messages
        assert messages[-2:] == ["Brought 2 files from Alpha", "1 large file (106 MB) stays at Alpha until you copy "
                                 "it (the lab's Centres panel: Copy here)"], messages
        assert [j["state"] for j in live_jobs(centres, "gamma", USER)] == ["PENDING"]  # all while in the queue
        for name in ("analysis.ipynb", "data.bin"):
            assert sha(gamma / "fedhub" / name) == sha(alpha / "fedhub" / name)
            assert (gamma / "fedhub" / name).stat().st_uid == (alpha / "fedhub" / name).stat().st_uid
        assert not (gamma / "outside.txt").exists()  # gamma's home is its own; only the workspace follows
        slurm(centres, "gamma", "scancel", held)
        api.wait_ready(USER, 60)
        listed = Server(hub, USER, token).call("GET", "api/contents").json()
        assert sorted(f["name"] for f in listed["content"]) == ["analysis.ipynb", "data.bin"]

        # gamma changes the notebook; the stop records it, and beta, behind its login node, gets it
        changed = {**notebook, "content": {**notebook["content"], "metadata": {"changed_at": "gamma"}}}
        assert Server(hub, USER, token).call("PUT", "api/contents/analysis.ipynb", json=changed).ok
        api.stop(USER)
        assert api.spawn(USER, {"centre": "beta", "cores": 1, "memory": "1G", "walltime": "00:20:00"}).status_code \
            in (201, 202)
        api.wait_ready(USER, 90)
        assert sha(beta / "fedhub" / "analysis.ipynb") == sha(gamma / "fedhub" / "analysis.ipynb")
        assert sha(beta / "fedhub" / "data.bin") == sha(alpha / "fedhub" / "data.bin")
        api.stop(USER)
    finally:
        if api.server(USER) is not None:
            api.stop(USER)
        forget(centres, USER)


def test_a_file_changed_at_two_centres_keeps_both_versions(hub, centres):
    api = HubAPI(hub)
    alpha, gamma = (centres.centres[c].home_of(OTHER) for c in ("alpha", "gamma"))
    forget(centres, OTHER)
    as_user("mkdir ~/fedhub && echo first > ~/fedhub/notes.txt", OTHER)
    try:
        # recorded at alpha, brought to gamma
        for centre in ("alpha", "gamma"):
            api.spawn(OTHER, {"centre": centre, "cores": 1, "memory": "1G", "walltime": "00:20:00"})
            api.wait_ready(OTHER, 90)
            api.stop(OTHER)
        assert (gamma / "fedhub" / "notes.txt").read_text() == "first\n"
        # changed at gamma (its stop records it) and at alpha while no server ran there
        subprocess.run(["runuser", "-u", OTHER, "--", "/bin/sh", "-c", f"echo at gamma > {gamma}/fedhub/notes.txt"],
                       check=True)
        api.spawn(OTHER, {"centre": "gamma", "cores": 1, "memory": "1G", "walltime": "00:20:00"})
        api.wait_ready(OTHER, 90)
        api.stop(OTHER)
        as_user("echo at alpha > ~/fedhub/notes.txt", OTHER)
        api.spawn(OTHER, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:20:00"})
        messages = api.progress(OTHER, timeout=90)
        assert any(m.startswith("Changed here and at another centre, so both are kept: yours from Alpha as "
                                "notes (Alpha ") for m in messages), messages
        api.wait_ready(OTHER, 90)
        kept, newest = sorted(os.listdir(alpha / "fedhub"))
        assert newest == "notes.txt" and kept.startswith("notes (Alpha ") and kept.endswith(").txt"), kept
        assert (alpha / "fedhub" / "notes.txt").read_text() == "at gamma\n"
        assert (alpha / "fedhub" / kept).read_text() == "at alpha\n"
        api.stop(OTHER)
    finally:
        if api.server(OTHER) is not None:
            api.stop(OTHER)
        forget(centres, OTHER)


def test_a_running_servers_changes_are_recorded_every_interval_without_a_stop(hub, centres):
    """The tests' hub records a running server's workspace every 10 s (workspace_record_interval,
    plus up to half of it so that servers spread out): a file written at alpha while the server
    runs is in the user's listing, as alpha's newest, with no stop, continue or Refresh."""
    user = TEST_USERS[1]
    api = HubAPI(hub)
    forget(centres, user)
    try:
        assert api.spawn(user, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:20:00"}).status_code \
            in (201, 202)
        api.wait_ready(user, 90)
        as_user("mkdir -p ~/fedhub && head -c 20000 /dev/urandom > ~/fedhub/while-running.bin", user)
        token = api.post(f"/users/{user}/tokens", json={"note": "listing"}).json()["token"]

        def listed():
            files = HubAPI(hub, token).get(f"/fedhub/users/{user}/workspace").json()["files"]
            return next((f for f in files if f["path"] == "while-running.bin"), None)
        entry = wait_for(listed, 40, "the running server's workspace to be recorded")
        assert entry["at"] == {"alpha": "newest"} and entry["size"] == 20000, entry
        assert api.server(user) is not None  # still running: recorded without a stop
    finally:
        if api.server(user) is not None:
            api.stop(user)
        forget(centres, user)
