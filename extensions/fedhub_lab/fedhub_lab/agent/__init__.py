"""Runs inside a user's kernel: the move agent (snapshot and restore, called on the kernel's shell
channel by the mover), the screening of what can move, and ``quota()`` for notebooks.
Imports nothing of the server's, so a kernel never loads the server extension."""
