"""``quota()``: the allocation table as an ipywidget, for any notebook front end.

    from fedhub_lab import quota
    quota()

Shows every centre's core-hours, GPU-hours and storage with the time they were read, the
centre this kernel's server runs at marked, and a Refresh button. Figures come from the same
quota service as the JupyterLab panel, asked with this server's token.
"""

from __future__ import annotations

import html

from ..quota_source import QuotaSource, QuotaUnavailable

# Inline colours: a notebook's output has no stylesheet of ours outside JupyterLab.
_LEVEL_STYLE = {"warn": "background:#fff3cd", "critical": "background:#f8d7da", "used-up": "background:#f8d7da"}


def _hours(used, limit, unit: str) -> str:
    if used is None:
        return "–"
    if limit is None:
        return f"{used:.1f} {unit} used (no limit)"
    return f"{used:.1f} of {limit:.1f} {unit} ({max(0.0, limit - used):.1f} left)"


def render_table(envelope: dict) -> str:
    """The HTML table for one quota envelope (pure: tested without a kernel)."""
    report = envelope["quota"]
    rows = []
    for entry in report["centres"]:
        here = entry["centre"] == envelope.get("centre")
        name = html.escape((entry.get("name") or entry["centre"])
                           + (f" · {entry['project']}" if entry.get("project") else "")) + (" (this server)" if here else "")
        if "core_hours" not in entry:
            rows.append(f"<tr><td>{name}</td><td colspan='4'>not available: "
                        f"{html.escape(entry.get('error') or 'unknown')}</td></tr>")
            continue
        core, gpu, storage = entry["core_hours"], entry["gpu_hours"], entry["storage_gb"]
        level = entry.get("level", "ok")
        rows.append(
            f"<tr class='fedhub-level-{html.escape(level)}' style='{_LEVEL_STYLE.get(level, '')}'><td>{name}</td>"
            f"<td>{html.escape(_hours(core['used'], core['limit'], 'core-h'))}</td>"
            f"<td>{html.escape(_hours(gpu['used'], gpu['limit'], 'GPU-h'))}</td>"
            f"<td>{html.escape(_hours(storage['used'], storage['limit'], 'GB'))}</td>"
            f"<td>{html.escape(entry['read_at'][:19].replace('T', ' '))}</td></tr>")
    head = "<tr><th>Centre</th><th>Core-hours</th><th>GPU-hours</th><th>Storage</th><th>Read at</th></tr>"
    return f"<table class='fedhub-quota-table'>{head}{''.join(rows)}</table>"


def quota(timeout: float = 10.0):
    """Show this user's allocations at every centre (an ipywidgets box with a Refresh button)."""
    import ipywidgets as widgets

    table = widgets.HTML()
    button = widgets.Button(description="Refresh", icon="refresh")

    def refresh(_=None):
        try:
            table.value = render_table(QuotaSource.from_env().fetch(timeout))
        except QuotaUnavailable as e:
            table.value = f"<p class='fedhub-quota-unavailable'>Allocations are not available: {html.escape(str(e))}</p>"

    button.on_click(refresh)
    refresh()
    return widgets.VBox([table, button])
