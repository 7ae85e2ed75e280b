"""Writes the reference pages that come from the code, before Sphinx reads the sources:

- ``reference/rest-api.md``: every route ``fedhub.hub.api.install_routes`` adds to the hub's REST
  API, with the methods its handler answers and the handler's (or its module's) docstring;
- ``reference/chart-values.md``: the Helm chart's values from ``values.schema.json`` and the
  defaults in ``values.yaml`` (``helm/values_doc.py``).

A page is rewritten only when its text changes, so incremental builds stay incremental.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
METHODS = ("get", "post", "put", "patch", "delete")


def own_methods(handler) -> list[str]:
    """The HTTP methods a FedHub handler answers itself (not tornado's defaults)."""
    return [m.upper() for m in METHODS if m.upper() in handler.SUPPORTED_METHODS
            and any(m in vars(b) for b in handler.__mro__ if b.__module__.startswith("fedhub"))]


def readable(path: str, handler) -> str:
    """A route's pattern with each group named as the handler's methods name it
    (``/users/([^/]+)/kernels/([0-9a-f]{16})`` -> ``/users/{user_name}/kernels/{kernel_id}``)."""
    method = getattr(handler, own_methods(handler)[0].lower())
    names = iter(list(inspect.signature(method).parameters)[1:])
    return re.sub(r"\((?:[^()]|\([^()]*\))*\)", lambda _: "{" + next(names) + "}", path)


def rest_api() -> str:
    from fedhub.hub import api

    out = ["# REST API", "", "FedHub's routes in the hub's REST API (prefix `/hub`), as `configure_hub` installs "
           "them (`spawners/fedhub/hub/api/`). Each needs a JupyterHub API token "
           "(`Authorization: token <token>`) with the scopes named below.", ""]
    modules: dict[str, list] = {}
    for path, handler in api.ROUTES:
        modules.setdefault(handler.__module__, []).append((path, handler))
    for module_name, routes in modules.items():
        module = importlib.import_module(module_name)
        out += [f"## `{module_name}`", "", "```text", textwrap.dedent(module.__doc__ or "").strip(), "```", ""]
        for path, handler in routes:
            methods = own_methods(handler)
            out += [f"### `{' '.join(methods)} /hub{readable(path, handler)}`", ""]
            doc = inspect.getdoc(handler)
            if doc and doc != inspect.getdoc(handler.__mro__[1]):
                out += ["```text", doc, "```", ""]
            out += [f"Handler: `{handler.__module__}.{handler.__qualname__}`", ""]
    return "\n".join(out).rstrip() + "\n"


def chart_values() -> str:
    spec = importlib.util.spec_from_file_location("values_doc", REPO / "helm" / "values_doc.py")
    values_doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(values_doc)
    return ("# Helm chart values\n\nEvery value of `helm/fedhub`, from its `values.schema.json` (which `helm lint "
            "--strict` enforces) with the defaults of `values.yaml`. How to deploy: [](../operators/kubernetes.md).\n\n"
            + values_doc.table() + "\n")


def write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(app) -> None:
    folder = Path(app.srcdir) / "reference"
    folder.mkdir(exist_ok=True)
    write(folder / "rest-api.md", rest_api())
    write(folder / "chart-values.md", chart_values())


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
