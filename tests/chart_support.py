"""The chart (helm/fedhub) as an operator meets it: helm lint and template with values files,
and Kubernetes' own schemas for what it renders."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
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
