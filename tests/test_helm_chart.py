"""The Helm chart, without a cluster: lint (values.schema.json and the chart's own checks),
render, Kubernetes 1.30's schemas, and what each value becomes; bad values are refused naming
the value and the fix. (The rendered configuration is run against real centres in
test_chart_deployment.py.)"""

from __future__ import annotations

import copy
import json
import re
import sys

import pytest
import yaml
from traitlets.config import Config

from helpers.chart import (CHART, EXAMPLE, REPO, crypt_key_values, find, helm, render, secret_data, validate,
                           write_values)
from fedhub.federation import parse_federation
from fedhub.hub.chart import ChartError, apply_settings

EXAMPLE_VALUES = yaml.safe_load(EXAMPLE.read_text())


def test_the_default_values_lint_render_and_are_valid_kubernetes_1_30(tmp_path):
    key = crypt_key_values(tmp_path)
    lint = helm("lint", "--strict", str(CHART), values=[key])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text, docs = render([key])
    assert {d["kind"] for d in docs} == {"ConfigMap", "Secret", "Deployment", "Service", "PersistentVolumeClaim",
                                         "NetworkPolicy", "ServiceAccount"}
    checked = validate(text, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("passed for resource") == len(docs)


def test_the_full_example_lints_renders_and_is_valid_kubernetes_1_30(tmp_path):
    lint = helm("lint", "--strict", str(CHART), values=[EXAMPLE])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text, docs = render([EXAMPLE])
    checked = validate(text, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("passed for resource") == len(docs) == 10  # with the Ingress

    # the federation file FedHub reads is the values' federation, keys where the chart mounts them
    config = find(docs, "ConfigMap", "-hub")["data"]
    federation = parse_federation(yaml.safe_load(config["federation.yaml"]))
    assert federation.centre_ids == ["north", "south", "east"]
    south = federation.centre("south").scheduler
    assert (south.host, south.port, south.key_file, south.known_hosts_file) == (
        "login.south.example", 2222, "/etc/fedhub/ssh/south.key", "/etc/fedhub/ssh/south.known_hosts")
    assert yaml.safe_load(config["classes.yaml"])["classes"][0]["name"] == "hpc-101"

    # each secret is in a Secret, and only there
    hub_secret = secret_data(find(docs, "Secret", "-hub"))
    assert hub_secret["db-url"] == EXAMPLE_VALUES["hub"]["db"]["url"]
    assert hub_secret["oidc-client-secret"] == "placeholder-client-secret"
    for key in ("cookie-secret", "proxy-token"):  # generated: 32 random bytes, in hex
        assert re.fullmatch(r"[0-9a-f]{64}", hub_secret[key]), key
    assert hub_secret["crypt-key"] == EXAMPLE_VALUES["hub"]["cryptKey"]  # given, never made up
    ssh = secret_data(find(docs, "Secret", "-ssh"))
    assert sorted(ssh) == sorted(f"{c}.{k}" for c in ("north", "south", "east") for k in ("key", "known_hosts"))
    assert ssh["south.known_hosts"].startswith("[login.south.example]:2222 ssh-ed25519 ")
    not_secret = text.replace(find_text(text, "Secret"), "")
    for secret in ("placeholder-password", "placeholder-client-secret", "PRIVATE KEY", hub_secret["crypt-key"]):
        assert secret not in not_secret

    # the hub and the proxy share a pod (tunnelled servers are forwards on its loopback)
    pod = find(docs, "Deployment", "-hub")["spec"]["template"]["spec"]
    hub, proxy = pod["containers"]
    assert (hub["name"], proxy["name"]) == ("hub", "proxy")
    assert hub["command"] == ["jupyterhub", "--config", "/opt/fedhub/hub/share/fedhub/hub_config/jupyterhub_config.py"]
    assert "--api-ip=127.0.0.1" in proxy["command"]  # the proxy's API never leaves the pod
    for container in (hub, proxy):
        assert container["readinessProbe"] and container["livenessProbe"] and container["resources"]["requests"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m for m in hub["volumeMounts"]}
    assert mounts["/etc/fedhub/ssh"]["readOnly"] and mounts["/etc/fedhub/chart"]["readOnly"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["ssh"]["secret"]["defaultMode"] == 0o400
    assert volumes[mounts["/var/lib/fedhub"]["name"]]["persistentVolumeClaim"]["claimName"] == "fh-fedhub-hub-state"

    # the NetworkPolicy: the public port from anywhere, the hub's API only from south's nodes;
    # out: DNS, https, the login nodes' ssh ports (one rule per centre, to its addresses) and the database
    policy = find(docs, "NetworkPolicy")["spec"]
    assert [rule["ports"][0]["port"] for rule in policy["ingress"]] == ["http", "hub-api"]
    assert policy["ingress"][1]["from"] == [{"ipBlock": {"cidr": "10.40.0.0/16"}}]
    ports = sorted(p["port"] for rule in policy["egress"] for p in rule.get("ports", []) if p["protocol"] == "TCP")
    assert ports == [22, 22, 53, 443, 2222, 5432]


def find_text(text: str, kind: str) -> str:
    """The rendered documents of one kind, as text."""
    return "\n---".join(doc for doc in text.split("\n---") if re.search(rf"^kind: {kind}$", doc, re.M))


def test_the_rendered_settings_configure_the_hub_as_the_values_say(tmp_path):
    _, docs = render([EXAMPLE])
    config = find(docs, "ConfigMap", "-hub")["data"]
    federation = tmp_path / "federation.yaml"
    federation.write_text(config["federation.yaml"])
    settings = json.loads(config["settings.json"])
    assert "clientSecret" not in settings["auth"]["oidc"]
    settings["federationFile"] = str(federation)
    env = {"FEDHUB_DB_URL": "postgresql+psycopg://u:p@db:5432/fedhub", "FEDHUB_OIDC_CLIENT_SECRET": "s",
           "JPY_COOKIE_SECRET": "a" * 64, "JUPYTERHUB_CRYPT_KEY": "b" * 64, "CONFIGPROXY_AUTH_TOKEN": "c" * 64}
    c = Config()
    apply_settings(c, settings, env)
    assert c.JupyterHub.db_url == env["FEDHUB_DB_URL"]
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.GenericOAuthenticator.oauth_callback_url == "https://notebooks.example.org/hub/oauth_callback"
    assert c.GenericOAuthenticator.client_secret == "s" and c.GenericOAuthenticator.allow_all is True
    assert c.FederatedSpawner.start_timeout == 600 and c.FederatedSpawner.state_dir == "/var/lib/fedhub"
    assert c.Authenticator.admin_users == {"ops-anna"}
    # without PostgreSQL, SQLite on the state volume, never in the working directory
    del env["FEDHUB_DB_URL"]
    apply_settings(c, settings, env)
    assert c.JupyterHub.db_url == "sqlite:////var/lib/fedhub/jupyterhub.sqlite"
    del env["FEDHUB_OIDC_CLIENT_SECRET"]
    with pytest.raises(ChartError, match="auth.oidc.clientSecret is missing"):
        apply_settings(Config(), settings, env)


def test_the_hub_refuses_a_local_route_in_a_hand_edited_federation_file(tmp_path):
    """A ConfigMap edited past helm's checks: the hub says why at start."""
    _, docs = render([EXAMPLE])
    doc = yaml.safe_load(find(docs, "ConfigMap", "-hub")["data"]["federation.yaml"])
    doc["centres"][1]["scheduler"] = {"type": "local", "slurm_conf": "/etc/slurm/slurm.conf"}
    federation = tmp_path / "federation.yaml"
    federation.write_text(yaml.safe_dump(doc))
    with pytest.raises(ChartError, match=r"federation.centres\[1\] \(south\).scheduler.type: 'local' cannot work in a pod"):
        apply_settings(Config(), {"federationFile": str(federation), "stateDir": "/var/lib/fedhub"}, {})


def _changed(values: dict, path: str, change) -> dict:
    """A copy of ``values`` with ``change(parent, key)`` applied at the dotted ``path``."""
    values = copy.deepcopy(values)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = values
    for p in parents:
        node = node[p]
    change(node, last)
    return values


def _without(values: dict, path: str) -> dict:
    return _changed(values, path, lambda node, key: node.pop(key))


def _with(values: dict, path: str, value) -> dict:
    return _changed(values, path, lambda node, key: node.__setitem__(key, value))


BAD_VALUES = {
    "a centre with a local route": (
        _with(EXAMPLE_VALUES, "federation.centres.0.scheduler", {"type": "local", "slurm_conf": "/etc/slurm/slurm.conf"}),
        ["federation.centres[0] (north).scheduler.type: \"local\" cannot work in a pod",
         "Reach the centre through its login node"]),
    "a centre without its ssh key": (
        _without(EXAMPLE_VALUES, "centreSecrets.east"),
        ["centreSecrets.east is missing: give the hub's ssh private key for east's login node"]),
    "a key that is not a private key": (
        _with(EXAMPLE_VALUES, "centreSecrets.north.sshPrivateKey", "ssh-ed25519 AAAA... (a public key)"),
        ["centreSecrets.north.sshPrivateKey", "Does not match pattern"]),
    "the login without its client secret": (
        _with(EXAMPLE_VALUES, "auth.oidc.clientSecret", ""),
        ["auth.oidc.clientSecret is missing"]),
    "a direct centre without the hub's address": (
        _without(EXAMPLE_VALUES, "federation.centres.1.hub_connect_url"),
        ["federation.centres[1] (south).hub_connect_url is required with network mode direct"]),
    "a centre without partitions": (
        _without(EXAMPLE_VALUES, "federation.centres.2.partitions"),
        ["federation.centres.2", "partitions is required"]),
    "a misspelt centre field": (
        _with(EXAMPLE_VALUES, "federation.centres.2.singleuser_command", "/apps/jupyter/bin/jupyterhub-singleuser"),
        ["federation.centres.2", "Additional property singleuser_command is not allowed"]),
    "a centre id Slurm and the hub cannot use": (
        _with(_with(EXAMPLE_VALUES, "federation.centres.2.id", "East HPC"), "centreSecrets",
              {**EXAMPLE_VALUES["centreSecrets"], "East HPC": EXAMPLE_VALUES["centreSecrets"]["east"]}),
        ["federation.centres.2.id", "Does not match pattern"]),
    "two centres with one id": (
        _with(EXAMPLE_VALUES, "federation.centres.2.id", "north"),
        ["federation.centres[2] (north): the id \"north\" is used by an earlier centre"]),
    "a database that is not PostgreSQL": (
        _with(EXAMPLE_VALUES, "hub.db.url", "mysql://fedhub:pw@db/fedhub"),
        ["hub.db.url", "Does not match pattern"]),
    "a cookie secret that is not 32 bytes of hex": (
        _with(EXAMPLE_VALUES, "hub.cookieSecret", "secret"),
        ["hub.cookieSecret", "Does not match pattern"]),
    "no crypt key (issue 21, finding 9: helm template and GitOps made a new one each render)": (
        _without(EXAMPLE_VALUES, "hub.cryptKey"),
        ["hub.cryptKey is missing: give the key that encrypts the users' stored logins (openssl rand -hex 32)",
         "hub.existingSecret"]),
    "a centre whose login nodes' addresses are not given": (
        _without(EXAMPLE_VALUES, "networkPolicy.loginNodes.east"),
        ["networkPolicy.loginNodes.east is missing: give the addresses of east's login nodes as CIDRs"]),
    "the provider's addresses not given": (
        _without(EXAMPLE_VALUES, "networkPolicy.identityProvider"),
        ["networkPolicy.identityProvider is missing"]),
    "a secret given beside an existing Secret": (
        _with(EXAMPLE_VALUES, "hub.existingSecret", "fedhub-secrets"),
        ["hub.cryptKey: hub.existingSecret holds the hub's secrets; leave hub.cryptKey empty",
         "hub.db.url: hub.existingSecret holds", "auth.oidc.clientSecret: hub.existingSecret holds"]),
    "a misspelt top-level value": (
        {**EXAMPLE_VALUES, "centres": []},
        ["Additional property centres is not allowed"]),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_are_refused_naming_the_value(case, tmp_path):
    values, expected = BAD_VALUES[case]
    path = write_values(tmp_path, values)
    for command in (("lint", "--strict", str(CHART)), ("template", "fh", str(CHART))):
        r = helm(*command, values=[path])
        said = r.stdout + r.stderr
        assert r.returncode != 0, said
        for words in expected:
            assert words in said, said


def test_the_docs_reference_documents_every_value_from_the_schema():
    """The docs' chart reference is made from the schema at each build: every value is there."""
    sys.path.insert(0, str(REPO / "docs" / "_ext"))
    from fedhub_reference import chart_values
    page = chart_values()
    schema = json.loads((CHART / "values.schema.json").read_text())
    for name in schema["properties"]["hub"]["properties"]:
        assert f"| `hub.{name}` |" in page


def test_the_hubs_secrets_may_live_in_a_secret_of_the_operators(tmp_path):
    """Issue 21, finding 9: with hub.existingSecret the chart makes no hub Secret (nothing to
    regenerate under helm template or GitOps) and the hub reads every secret from the named one."""
    values = _with(_without(_without(_without(EXAMPLE_VALUES, "hub.cryptKey"), "hub.db.url"), "auth.oidc.clientSecret"),
                   "hub.existingSecret", "fedhub-secrets")
    path = write_values(tmp_path, values)
    lint = helm("lint", "--strict", str(CHART), values=[path])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text, docs = render([path])
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == ["fh-fedhub-ssh"]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef")
           for e in find(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]["env"]}
    for name, key in (("JUPYTERHUB_CRYPT_KEY", "crypt-key"), ("JPY_COOKIE_SECRET", "cookie-secret"),
                      ("CONFIGPROXY_AUTH_TOKEN", "proxy-token"), ("FEDHUB_OIDC_CLIENT_SECRET", "oidc-client-secret")):
        assert env[name] == {"name": "fedhub-secrets", "key": key}, (name, env[name])
    assert env["FEDHUB_DB_URL"] == {"name": "fedhub-secrets", "key": "db-url", "optional": True}
    assert validate(text, tmp_path).returncode == 0


def test_the_hub_reaches_only_the_login_nodes_and_the_provider_it_is_given(tmp_path):
    """Issue 21, finding 9: the NetworkPolicy lets the hub's ssh reach each centre's login nodes
    at their addresses only, and https only the provider's; nothing else goes out but DNS, the
    database and the operator's own rules."""
    _, docs = render([EXAMPLE])
    egress = find(docs, "NetworkPolicy")["spec"]["egress"]
    rules = {(tuple(p["port"] for p in r.get("ports", [])), tuple(b.get("ipBlock", {}).get("cidr") for b in r.get("to", [])))
             for r in egress}
    assert ((22,), ("203.0.113.10/32",)) in rules and ((2222,), ("198.51.100.20/32", "198.51.100.21/32")) in rules
    assert ((22,), ("192.0.2.30/32",)) in rules and ((443,), ("203.0.113.50/32",)) in rules
    for ports, to in rules:
        if 22 in ports or 2222 in ports or 443 in ports:
            assert to, f"ports {ports} open to anywhere"
