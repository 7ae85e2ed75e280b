"""FedHub's import layers (spawners/fedhub/__init__.py names them): a module imports only from its
own layer or below, and no two packages import each other, directly or round a loop. Read from
the code's own import statements, function-level ones included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"fedhub": REPO / "spawners" / "fedhub", "fedhub_lab": REPO / "extensions" / "fedhub_lab" / "fedhub_lab"}

# lowest first; each name is a top-level module or subpackage of the package
LAYERS = {
    "fedhub": [
        ("foundation", {"runtime", "units", "metrics", "statedir", "hub_tls", "errors", "i18n"}),
        ("model", {"federation", "claims"}),
        ("identity", {"logins", "projects"}),
        ("scheduler", {"slurm"}),
        ("requests", {"request", "jobs", "placement", "service_app"}),
        ("features", {"quota", "classes", "kernels", "culling", "workspace"}),
        ("spawner", {"spawning"}),
        ("hub", {"hub"}),
        ("tools", {"cli"}),
    ],
    # by the process each part runs in (extensions/fedhub_lab/fedhub_lab/__init__.py)
    "fedhub_lab": [
        ("shared", {"runtime", "hub_tls", "quota_source"}),
        ("in the kernel or its job", {"agent", "launcher"}),
        ("kernel provisioning", {"provisioner"}),
        ("moves", {"moves"}),
        ("sessions", {"snapshots", "workspace"}),
        ("server extension", {"server"}),
    ],
}
LAYER_OF = {package: {name: i for i, (_, names) in enumerate(layers) for name in names}
            for package, layers in LAYERS.items()}


def modules(package: str) -> dict[str, Path]:
    root = PACKAGES[package]
    found = {}
    for path in root.rglob("*.py"):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(package: str) -> list[tuple[str, str]]:
    """(importing module, imported module) for every import of one module of ``package`` by another."""
    known = modules(package)
    edges = []
    for name, path in known.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            else:
                continue
            edges += [(name, t) for t in targets if t in known and t != name]
    return edges


def unit(module: str) -> str:
    """The top-level module or subpackage a module belongs to (``fedhub.slurm.job`` -> ``slurm``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_cycles(edges: list[tuple[str, str]], depth: int) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        ga, gb = ".".join(a.split(".")[:depth]), ".".join(b.split(".")[:depth])
        if ga != gb and gb != b.split(".")[0]:
            graph.setdefault(ga, set()).add(gb)
    cycles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_part_has_a_layer(package):
    unplaced = sorted({unit(m) for m in modules(package)} - set(LAYER_OF[package]) - {package})
    assert not unplaced, f"add these to a layer in LAYERS (and the package's docstring): {unplaced}"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_module_imports_from_a_higher_layer(package):
    layer, names = LAYER_OF[package], LAYERS[package]
    upward = sorted(f"{a} imports {b} ({names[layer[unit(a)]][0]} -> {names[layer[unit(b)]][0]})"
                    for a, b in imports(package)
                    if unit(a) in layer and unit(b) in layer and layer[unit(b)] > layer[unit(a)])
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_package_imports_another_round_a_loop(package):
    cycles = package_cycles(imports(package), depth=2)
    assert not cycles, "package cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_lab_extensions_typescript_has_no_import_loop():
    """The lab's modules (extensions/fedhub_lab/src) import each other one way only: the plugins
    share through tokens (tokens.ts), not through each other's modules."""
    import re
    src = REPO / "extensions" / "fedhub_lab" / "src"
    edges = []
    for path in [*src.glob("*.ts"), *src.glob("*.tsx")]:
        for target in re.findall(r"^import (?!type )[^;]*? from '\./([\w-]+)'", path.read_text(), flags=re.M):
            edges.append((f"lab.{path.stem}", f"lab.{target}"))
    assert edges, "no imports read: has the source moved?"
    cycles = package_cycles(edges, depth=2)
    assert not cycles, "import loops:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_tests_share_helpers_through_the_helpers_package_only():
    """A test module imports no other test module and nothing from conftest (fixtures come by
    name): what tests share lives in tests/helpers."""
    found = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(REPO)} imports {n}" for n in names
                      if n.split(".")[0].startswith("test_") or n.split(".")[0] == "conftest"]
    assert not found, "\n".join(found)
