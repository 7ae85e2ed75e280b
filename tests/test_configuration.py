"""One configuration source: the hub config's traitlets (a site config may replace them) and the
federation file; the traits reach what they name (no cluster needed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from helpers.testbed import HUB_CONFIG
from fedhub.spawning.spawner import FederatedSpawner
from helpers.federations import GOOD


def load_hub_config(workdir: Path) -> Config:
    """hub_config/jupyterhub_config.py as JupyterHub loads it, from ``workdir``."""
    import os
    here = os.getcwd()
    os.chdir(workdir)
    try:
        return PyFileConfigLoader(HUB_CONFIG.name, path=str(HUB_CONFIG.parent)).load_config()
    finally:
        os.chdir(here)


def test_the_hub_config_takes_the_site_configs_settings_and_configures_fedhub(tmp_path):
    federation = tmp_path / "federation.yaml"
    federation.write_text(yaml.safe_dump({**GOOD, "centres": [dict(GOOD["centres"][0], accounting={})]}))
    (tmp_path / "fedhub_site_config.py").write_text(
        f"c.FederatedSpawner.federation_file = {str(federation)!r}\n"
        "c.QuotaService.port = 18082\nc.QuotaService.max_age = 7\n")
    c = load_hub_config(tmp_path)
    assert c.JupyterHub.spawner_class == "fedhub"  # the entry point
    assert c.FederatedSpawner.federation_file == str(federation)
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "fedhub-quota"]
    assert service["url"] == "http://127.0.0.1:18082"
    assert f"--QuotaService.federation_file={federation}" in service["command"]
    assert "--QuotaService.max_age=7" in service["command"]
    assert "environment" not in service  # nothing reaches the service through the environment
    assert c.FederatedSpawner.quota_service_url == "http://127.0.0.1:18082/services/fedhub-quota/"


def test_the_spawner_is_registered_under_jupyterhubs_entry_point():
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "fedhub"]
    assert ep.load() is FederatedSpawner


def test_scheduler_traits_reach_the_monitor(tmp_path):
    """Part A3: scheduler_timeout and startup_poll_interval never reached the monitor (20 s, 0.5 s)."""
    federation = tmp_path / "federation.yaml"
    federation.write_text(yaml.safe_dump(GOOD))
    spawner = FederatedSpawner(config=Config(), user=SimpleNamespace(name="alice", url="/"),
                               federation_file=str(federation), state_dir=str(tmp_path / "state"),
                               scheduler_timeout=7, startup_poll_interval=0.3, monitor_interval=11, monitor_grace=13)
    watcher = spawner.monitor.watcher("north")
    assert (watcher.client.timeout, watcher.fast_interval, watcher.interval, watcher.grace) == (7, 0.3, 11, 13)
    assert spawner.backlog.timeout == 7
