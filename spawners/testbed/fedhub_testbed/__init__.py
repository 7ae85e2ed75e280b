"""FedHub's loopback testbed: real Slurm centres (alpha local; beta behind an ssh login node, its
nodes in network namespaces; gamma small), the federation's OpenID Connect provider, PostgreSQL
and a hub on loopback. ``make demo``, the tests and the benchmarks use it; FedHub's wheel, image and
chart do not carry it (spawners/testbed/pyproject.toml, installed by the Makefile)."""
