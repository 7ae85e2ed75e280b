"""A notebook server's kernels at the federation's centres, each a Slurm job (``server_kernels``),
and the forwards that carry their channels (``relay``)."""

KERNEL_SCOPE = "custom:fedhub:kernels"  # a server manages its own kernels at centres, a user theirs
