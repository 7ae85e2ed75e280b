"""The user's workspace at a centre (issue 25): scanned as the user, for the hub's index. Runs in
the user's server, or on its own with the notebook environment's Python while no server runs.
Standard library only (and snapshots/files.py, whose refusals and tar streams it shares)."""
