"""What the lab extension costs, against baselines in the same run.

1. The server handler (browser -> proxy -> notebook server -> quota service) against asking the
   quota service directly through the proxy, same user and token, sequential requests.
2. In headless Chromium: time from opening JupyterLab to its own status bar, and to FedHub's
   status item showing figures (the extra wait is one handler round trip after the lab starts).

    .venv/bin/python benchmarks/lab_quota.py [--requests 300] [--pages 7]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec, free_port  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from helpers.support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

HUB_CONFIG = HERE.parent / "hub_config" / "jupyterhub_config.py"

USER = "fhbench"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed_gets(url: str, token: str, n: int) -> list[float]:
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    times = []
    for _ in range(n):
        started = time.perf_counter()
        r = session.get(url, timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
    return times


def page_timings(hub: LocalHub, pages: int) -> list[tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{hub.url}/hub/login?next=/user/{USER}/lab")
        page.fill("#username_input", USER)
        page.fill("#password_input", hub.password)
        page.click("#login_submit")
        page.locator("#fedhub-quota-status").wait_for(timeout=60_000)  # warm: lab assets cached
        for _ in range(pages):
            page = context.new_page()
            started = time.perf_counter()
            page.goto(f"{hub.url}/user/{USER}/lab")
            page.locator(".jp-StatusBar-Item").first.wait_for(timeout=60_000)
            lab = time.perf_counter() - started
            page.wait_for_function("document.querySelector('#fedhub-quota-status')?.textContent.includes('core-h')",
                                   timeout=60_000)
            out.append((lab * 1000, (time.perf_counter() - started) * 1000))
            page.close()
        browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pages", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    specs = [CentreSpec("alpha", "Alpha", cpus=4, memory_mb=8192, accounting=True,
                        partitions=[PartitionSpec("cpu", 4, "4G", "04:00:00", default=True)])]
    hub_port = free_port()
    with LocalFederation(specs, singleuser_cmd="/opt/fedhub/jobenv/bin/jupyterhub-singleuser", users=[USER]) as fed:
        hub = LocalHub(fed.federation_file, fed.root / "hub", config_file=HUB_CONFIG, hub_port=hub_port,
                       api_token=secrets.token_hex(20), users=[USER])
        hub.start()
        try:
            admin = {"Authorization": f"token {hub.api_token}"}
            requests.post(f"{hub.url}/hub/api/users/{USER}", headers=admin, timeout=10)
            requests.post(f"{hub.url}/hub/api/users/{USER}/server", headers=admin, timeout=60,
                          json={"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:30:00"})
            deadline = time.monotonic() + 90
            while not (requests.get(f"{hub.url}/hub/api/users/{USER}", headers=admin, timeout=10)
                       .json()["servers"].get("", {}).get("ready")):
                if time.monotonic() > deadline:
                    sys.exit("the server did not start")
                time.sleep(0.5)
            token = requests.post(f"{hub.url}/hub/api/users/{USER}/tokens", headers=admin,
                                  json={"note": "bench"}, timeout=10).json()["token"]
            direct = f"{hub.url}/services/fedhub-quota/api/quota/{USER}"
            handler = f"{hub.url}/user/{USER}/fedhub/api/quota"
            timed_gets(direct, token, 20), timed_gets(handler, token, 20)  # warm both paths
            # interleaved halves, so drift affects both alike
            d, h = [], []
            for _ in range(2):
                d += timed_gets(direct, token, args.requests // 2)
                h += timed_gets(handler, token, args.requests // 2)
            pages = page_timings(hub, args.pages)
        finally:
            hub.stop()
    (d50, d99), (h50, h99) = percentiles(d), percentiles(h)
    print(f"\nQuota figures, {args.requests} sequential requests each, through the proxy:")
    print(f"  service directly        p50 {d50:6.1f} ms  p99 {d99:6.1f} ms")
    print(f"  lab's server handler    p50 {h50:6.1f} ms  p99 {h99:6.1f} ms   (ratio p50 {h50 / d50:.2f})")
    lab = statistics.median(t[0] for t in pages)
    item = statistics.median(t[1] for t in pages)
    print(f"JupyterLab in headless Chromium, {args.pages} page loads (assets cached):")
    print(f"  lab's own status bar    median {lab:6.0f} ms")
    print(f"  FedHub's status item    median {item:6.0f} ms   (+{item - lab:.0f} ms, ratio {item / lab:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
