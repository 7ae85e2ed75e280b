"""Loading the federation file: a good file becomes the model; each kind of mistake is named
by the path of the field and says what is allowed."""

import copy
import textwrap

import pytest

from fedhub.federation import FederationError, load_federation, parse_federation
from helpers.federations import GOOD


def test_good_file_becomes_the_model(tmp_path):
    path = tmp_path / "federation.yaml"
    import yaml
    path.write_text(yaml.safe_dump(GOOD))
    fed = load_federation(path)
    assert fed.centre_ids == ["north", "south"]
    north, south = fed.centres
    assert north.partition("cpu").max_memory_mb == 16384
    assert north.partition("gpu").max_walltime_s == 86400
    assert [(g.type, g.gres, g.max) for g in north.partition("gpu").gpus] == [("a100", "gpu:a100", 2), ("dcu", "dcu", 4)]
    assert south.scheduler.kind == "ssh" and south.scheduler.port == 22
    assert south.partition("batch").max_walltime_s == 5400
    assert south.hub_connect_url == "https://hub.example" and north.hub_connect_url == "http://10.0.0.1:8081"
    assert (north.cluster, south.cluster) == ("north", "south-cluster")  # the id unless given
    # login naming: map first (explicit), then the template
    assert south.logins.login_for("alice") == ("asmith", True)
    assert south.logins.login_for("bob") == ("fh_bob", False)
    assert north.logins.login_for("bob") == ("bob", False)
    assert north.scheduler.commands_dir == "/usr/bin"
    assert (fed.warn_percent, fed.critical_percent) == (80.0, 95.0)  # the defaults
    fed = parse_federation({**GOOD, "allocation_warnings": {"warn_percent": 70, "critical_percent": 90.5}})
    assert (fed.warn_percent, fed.critical_percent) == (70.0, 90.5)


def bad(mutate):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(FederationError) as info:
        parse_federation(doc, source="fed.yaml")
    return str(info.value)


@pytest.mark.parametrize("mutate,expected", [
    (lambda d: d["centres"][0]["partitions"][0].update(max_cores=-3),
     "fed.yaml: centres[0].partitions[0].max_cores: must be a whole number from 1 to 100000, got -3"),
    (lambda d: d["centres"][1]["partitions"][0].update(max_memory="lots"),
     "centres[1].partitions[0].max_memory: 'lots' is not a memory size; write e.g. 512M, 4G or 1T"),
    (lambda d: d["centres"][0]["partitions"][1].update(max_walltime="25:61:00"),
     "centres[0].partitions[1].max_walltime: '25:61:00' is not a walltime; minutes and seconds go up to 59"),
    (lambda d: d["centres"][1].update(id="North"),
     "centres[1].id: 'North' is not allowed; use 1-32 lower-case letters"),
    (lambda d: d["centres"][1].update(id="north"),
     "centres[1].id: duplicate centre id 'north'"),
    (lambda d: d["centres"][0]["scheduler"].update(type="pbs"),
     "centres[0].scheduler.type: 'pbs' is not a scheduler route; use 'local' or 'ssh'"),
    (lambda d: d["centres"][0]["scheduler"].update(slurm_conf="slurm.conf"),
     "centres[0].scheduler.slurm_conf: 'slurm.conf' must be an absolute path"),
    (lambda d: d["centres"][1]["scheduler"].pop("key_file"),
     "centres[1].scheduler.key_file: is required"),
    (lambda d: d["centres"][0].update(hub_connect_url="hub:8081"),
     "centres[0].hub_connect_url: 'hub:8081' is not an http(s) URL"),
    (lambda d: d["centres"][0].update(singleuser_cmd="jupyterhub-singleuser"),
     "centres[0].singleuser_cmd: 'jupyterhub-singleuser' must be an absolute path"),
    (lambda d: d["centres"][0]["partitions"][0].update(name="cpu;rm"),
     "centres[0].partitions[0].name: 'cpu;rm' is not allowed"),
    (lambda d: d["centres"][0]["partitions"].append(dict(d["centres"][0]["partitions"][0])),
     "centres[0].partitions[2].name: duplicate partition 'cpu'"),
    (lambda d: d["centres"][0]["partitions"][1]["gpus"][0].update(max=0),
     "centres[0].partitions[1].gpus[0].max: must be a whole number from 1 to 1024, got 0"),
    (lambda d: d["centres"][0]["partitions"][1]["gpus"][1].update(gres="dcu x"),
     "centres[0].partitions[1].gpus[1].gres: 'dcu x' is not allowed; give a Slurm gres name"),
    (lambda d: d["centres"][0]["partitions"][0].update(max_core=4),
     "centres[0].partitions[0].max_core: unknown field; allowed fields are:"),
    (lambda d: d["centres"][1]["logins"].update(template="fh_{user}"),
     "centres[1].logins.template: 'fh_{user}' must contain {username} and no other field"),
    (lambda d: d["centres"][1]["logins"]["map"].update(bob="Bob Smith"),
     "centres[1].logins.map.bob: 'Bob Smith' is not allowed"),
    (lambda d: d["centres"][1]["logins"]["map"].update(bob="bob\n"),
     "centres[1].logins.map.bob: 'bob\\n' is not allowed"),
    (lambda d: d["centres"][1]["logins"]["map"].update(eve="root"),
     "centres[1].logins.map.eve: no hub user may act as root at a centre"),
    (lambda d: d["centres"][1]["logins"]["map"].update(bob="asmith"),
     "login 'asmith' is mapped to more than one hub user"),
    (lambda d: d["centres"][1].update(accounts={"template": "{username}"}),
     "centres[1].accounts: this field is now called logins (a user's login at the centre); rename it"),
    (lambda d: d["centres"][0].update(accounting={"account_template": "p_{username}"}),
     "centres[0].accounting.account_template: this field is now called charge_account_template"),
    (lambda d: d["centres"][1]["scheduler"].pop("known_hosts_file"),
     "centres[1].scheduler.known_hosts_file: is required: the hub trusts only pinned host keys. Make the file with "
     "`ssh-keyscan login.south > /etc/fedhub/known_hosts`"),
    (lambda d: d["centres"][1]["scheduler"].pop("query_user"),
     "centres[1].scheduler.query_user: is required"),
    (lambda d: d["centres"][1].update(cluster="south cluster"),
     "centres[1].cluster: 'south cluster' is not allowed; give the centre's Slurm ClusterName"),
    (lambda d: d["centres"][0].update(id="north\n"),
     "centres[0].id: 'north\\n' is not allowed"),
    (lambda d: d["centres"][0].update(network={"mode": "tunnel", "login_node_address": "10.0.0.1",
                                               "hub_api_port": 18081, "public_port": 18000}),
     "centres[0].network.mode: tunnel needs the centre's login node: give the centre a scheduler of type ssh"),
    (lambda d: d["centres"][1].update(network={"mode": "tunnel", "hub_api_port": 18081, "public_port": 18000}),
     "centres[1].network.login_node_address: is required"),
    (lambda d: d["centres"][1].update(network={"mode": "tunnel", "login_node_address": "10.0.0.1"}),
     "centres[1].network.hub_api_port: is required"),
    (lambda d: d["centres"][1].update(network={"mode": "tunnel", "login_node_address": "10.0.0.1",
                                               "hub_api_port": 18081, "public_port": 18000}),
     "centres[1].hub_connect_url: a tunnel centre's nodes reach the hub through the login node"),
    (lambda d: d["centres"][1].update(network={"mode": "vpn"}),
     "centres[1].network.mode: 'vpn' is not a network mode; use 'direct' or 'tunnel'"),
    (lambda d: d["centres"][0].update(network={"mode": "direct", "hub_api_port": 1}),
     "centres[0].network.hub_api_port: is for mode: tunnel only"),
    (lambda d: d.update(centres=[]), "centres: must be a non-empty list of centres"),
    (lambda d: d.update(default_centre="east"), "default_centre: unknown centre 'east'; choose one of: north, south"),
    (lambda d: d.update(version=2), "version: unsupported version 2"),
    (lambda d: d["centres"][0]["partitions"][0].update(charge_rate="cheap"),
     "centres[0].partitions[0].charge_rate: must be a number >= 0"),
    (lambda d: d.update(allocation_warnings={"warn_percent": 120}),
     "allocation_warnings.warn_percent: must be a percentage above 0 and at most 100, got 120"),
    (lambda d: d.update(allocation_warnings={"warn_percent": 90, "critical_percent": 85}),
     "allocation_warnings.warn_percent: 90 must be below critical_percent (85)"),
    (lambda d: d.update(allocation_warnings={"warn": 70}),
     "allocation_warnings.warn: unknown field; allowed fields are: critical_percent, warn_percent"),
    (lambda d: d["centres"][0].update(projects={"claim": "projects", "slurm_associations": True}),
     "centres[0].projects: give one source: claim: <the userinfo claim with the projects by centre id>, or "
     "slurm_associations: true"),
    (lambda d: d["centres"][0].update(logins={"claim": "centre logins"}),
     "centres[0].logins.claim: 'centre logins' is not allowed; name the userinfo claim with the users' logins"),
])
def test_each_mistake_is_named_by_its_path(mutate, expected):
    assert expected in bad(mutate)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(FederationError, match="cannot read the federation file"):
        load_federation(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text(textwrap.dedent("""\
        centres:
          - id: a
           name: wrong indent
        """))
    with pytest.raises(FederationError, match=r"broken.yaml: \(file\): not valid YAML at line 3"):
        load_federation(broken)


def test_error_from_file_names_the_file(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("version: 1\ncentres: nope\n")
    with pytest.raises(FederationError) as info:
        load_federation(path)
    assert str(info.value) == f"{path}: centres: must be a non-empty list of centres"


def test_example_file_in_hub_config_is_valid():
    from pathlib import Path
    fed = load_federation(Path(__file__).parents[2] / "hub_config" / "federation.yaml")
    assert len(fed.centres) >= 2


def test_logins_may_come_from_a_claim_before_the_template():
    doc = copy.deepcopy(GOOD)
    doc["centres"][0]["logins"] = {"claim": "centre_logins", "template": None}
    logins = parse_federation(doc).centres[0].logins
    assert (logins.claim, logins.template) == ("centre_logins", None)


def test_projects_come_from_a_claim_or_from_slurm_associations():
    doc = copy.deepcopy(GOOD)
    doc["centres"][0]["projects"] = {"claim": "projects"}
    doc["centres"][1]["projects"] = {"slurm_associations": True}
    north, south = parse_federation(doc).centres[:2]
    assert (north.projects.claim, north.projects.slurm_associations) == ("projects", False)
    assert (south.projects.claim, south.projects.slurm_associations) == (None, True)
