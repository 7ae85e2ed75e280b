"""A whole session written to files and brought back: every kernel's variables (the move's
snapshot, kept on disk), which document uses which kernel, and the files a session needs at
another centre. The hub's "continue at another centre" and the end-of-walltime snapshot use it;
the mover's channel to a kernel is the only way in or out of a kernel."""
