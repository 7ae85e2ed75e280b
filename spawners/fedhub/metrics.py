"""Prometheus metrics, exported on the hub's own /hub/metrics (JupyterHub serves the default
registry there), so operators see FedHub next to JupyterHub's figures."""

from prometheus_client import Counter, Gauge, Histogram

SCHEDULER_QUERIES = Counter(
    "fedhub_scheduler_queries_total", "Slurm commands FedHub ran, per centre and command",
    ["centre", "command"],
)
SPAWNS = Counter("fedhub_spawns_total", "Servers started, per centre and outcome", ["centre", "outcome"])
PLACEMENTS = Counter("fedhub_placement_decisions_total", "Automatic placements, per chosen centre", ["centre"])
FAILOVERS = Counter("fedhub_failovers_total", "Spawns moved on from a centre, per centre and reason",
                    ["centre", "reason"])
PLACEMENT_SECONDS = Histogram("fedhub_placement_seconds", "Time to decide where a server goes",
                              buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10))
CENTRE_UP = Gauge("fedhub_centre_up", "1 if the centre's scheduler answers (after the grace), else 0", ["centre"])
