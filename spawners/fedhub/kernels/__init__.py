"""A notebook server's kernels at the federation's centres, each a Slurm job (``server_kernels``),
and the forwards that carry their channels (``relay``)."""

KERNEL_SCOPE = "custom:fedhub:kernels"  # a server manages its own kernels at centres, a user theirs

# The kernel launcher (fedhub_lab.launcher, installed in each centre's notebook environment) and
# the hub speak this version of their protocol; the launcher names it in every request
# (PROTOCOL_HEADER) and the hub refuses any other, saying what to install. Raise it, in both
# places (tests/unit/test_launcher_protocol.py holds them equal), when a route or body changes.
LAUNCHER_PROTOCOL = 1
PROTOCOL_HEADER = "FedHub-Launcher-Protocol"
