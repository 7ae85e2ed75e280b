"""The chart (helm/fedhub) as an operator meets it: helm lint and template with values files,
and Kubernetes' own schemas for what it renders."""

from __future__ import annotations

import base64
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "fedhub"
EXAMPLE = REPO / "helm" / "examples" / "three-centres.yaml"
HELM = Path("/opt/fedhub/tools/helm")  # the Makefile's HELM (make test installs it)
KUBERNETES = "1.30.0"


def helm(*args: str, values: list[Path] = ()) -> subprocess.CompletedProcess:
    if not HELM.exists():
        raise AssertionError(f"helm is not installed at {HELM}: run `make test`, which installs it")
    argv = [str(HELM), *args]
    for v in values:
        argv += ["-f", str(v)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def crypt_key_values(tmp_path: Path) -> Path:
    """The one value the chart's defaults lack: a crypt key (the chart never makes one up)."""
    return write_values(tmp_path, {"hub": {"cryptKey": secrets.token_hex(32)}}, "crypt-key.yaml")


def write_values(tmp_path: Path, values: dict, name: str = "values.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def render(values: list[Path] = (), release: str = "fh") -> tuple[str, list[dict]]:
    """``helm template``: the manifests' text and documents (fails the test on an error)."""
    r = helm("template", release, str(CHART), "--namespace", "fedhub", values=values)
    assert r.returncode == 0, r.stderr
    return r.stdout, [d for d in yaml.safe_load_all(r.stdout) if d]


def validate(manifests: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Every manifest against the Kubernetes 1.30 schemas (strict: no unknown fields)."""
    path = tmp_path / "rendered.yaml"
    path.write_text(manifests)
    return subprocess.run([str(Path(sys.executable).parent / "kubernetes-validate"), "-k", KUBERNETES, "--strict",
                           str(path)], capture_output=True, text=True, timeout=120)


def find(docs: list[dict], kind: str, suffix: str = "") -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def secret_data(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


class HubPod:
    """The hub's pod as the kubelet would run it from the rendered manifests, on this machine:
    each container's command and environment (secretKeyRef from the rendered Secret), its
    volumes at their mount paths in a private mount namespace (ConfigMap and Secret files,
    read-only; the state volume; a fresh emptyDir at /tmp; the image's working directory
    read-only), as the image's non-root user. Containers share the machine's network, as
    containers in one pod share theirs. The image is the fresh venv the wheel was installed
    into at the image's own path; the proxy's image is the npm configurable-http-proxy."""

    def __init__(self, docs: list[dict], root: Path, state: Path, user: str, proxy_bin: str):
        self.docs = docs
        self.root = root
        self.state = state  # the PersistentVolumeClaim's volume: kept from one pod to the next
        self.user = user
        self.proxy_bin = proxy_bin
        self.procs: list[subprocess.Popen] = []
        self.pod = find(docs, "Deployment", "-hub")["spec"]["template"]["spec"]
        self.secrets = {d["metadata"]["name"]: secret_data(d) for d in docs if d["kind"] == "Secret"}
        self.config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}

    def container(self, name: str) -> dict:
        return next(c for c in self.pod["containers"] if c["name"] == name)

    def env(self, container: dict) -> dict[str, str]:
        env = {"PATH": "/opt/fedhub/hub/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "HOME": "/srv/fedhub", "PYTHONDONTWRITEBYTECODE": "1"}  # the image's ENV and user
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                env[var["name"]] = self.secrets[ref["name"]][ref["key"]]
        return env

    def _materialize(self, name: str) -> Path:
        """A volume's content as the kubelet writes it (fsGroup: group-readable by the pod)."""
        volume = next(v for v in self.pod["volumes"] if v["name"] == name)
        gid = grp.getgrnam(self.user).gr_gid
        if "persistentVolumeClaim" in volume:
            return self.state
        target = self.root / "volumes" / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        os.chown(target, 0, gid)
        if "emptyDir" in volume:
            os.chown(target, pwd.getpwnam(self.user).pw_uid, gid)
            target.chmod(0o700)
            return target
        if "configMap" in volume:
            files, mode = self.config_maps[volume["configMap"]["name"]], 0o644
        else:
            files, mode = self.secrets[volume["secret"]["secretName"]], volume["secret"].get("defaultMode", 0o644) | 0o040
        target.chmod(0o750)
        for key, content in files.items():
            path = target / key
            path.write_text(content)
            os.chown(path, 0, gid)
            path.chmod(mode)
        return target

    def start(self) -> None:
        """A new pod: fresh emptyDirs and working directory, the same state volume."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.workdir = self.root / "workdir"  # the image's /srv/fedhub, fresh in every pod
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir()
        hub = self.container("hub")
        extra = [(self.workdir, hub["workingDir"], True)]  # readOnlyRootFilesystem
        proxy = self.container("proxy")
        # the proxy's command as the chart gives it (a shell that waits for the hub's certificates,
        # then configurable-http-proxy), which this machine has under NODE_PREFIX
        env = {**self.env(proxy), "PATH": f"{os.path.dirname(self.proxy_bin)}:/usr/bin:/bin"}
        plog = open(self.root / "proxy.log", "ab")
        self.procs.append(subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
             self._mount_script(proxy, [], "/"), "pod", *proxy["command"]],
            env=env, stdout=plog, stderr=subprocess.STDOUT, start_new_session=True))
        log = open(self.root / "hub.log", "ab")
        self.procs.append(subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
             self._mount_script(hub, extra, hub["workingDir"]), "pod", *hub["command"]],
            env=self.env(hub), stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _mount_script(self, container: dict, extra: list, workdir: str) -> str:
        """A shell script that mounts ``container``'s volumes where it sees them, then runs its
        command (the script's arguments) as the pod's user."""
        mounts = [(self._materialize(m["name"]), m["mountPath"], m.get("readOnly", False))
                  for m in container.get("volumeMounts", [])] + extra
        mounts.sort(key=lambda m: m[1] == "/tmp")  # a new /tmp last: the others' sources are under /tmp
        script = ["set -e"]
        for source, path, read_only in mounts:
            os.makedirs(path, exist_ok=True)  # a mount point on this machine (empty)
            script.append(f"mount --bind {source} {path}")
            if read_only:
                script.append(f"mount -o remount,bind,ro {path}")
        script.append(f"cd {workdir}")
        script.append(f'exec setpriv --reuid={self.user} --regid={self.user} --init-groups "$@"')
        return "\n".join(script)

    def stop(self, timeout: float = 30) -> None:
        """The pod deleted: SIGTERM to every container, then SIGKILL after the grace period."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []

    def starts(self) -> int:
        """How many times the hub said it was fully up (services started, routes given)."""
        log = self.root / "hub.log"
        return log.read_text(errors="replace").count("JupyterHub is now running") if log.exists() else 0

    def log_tail(self, lines: int = 60) -> str:
        text = (self.root / "hub.log").read_text(errors="replace") if (self.root / "hub.log").exists() else ""
        return "\n".join(text.splitlines()[-lines:])
