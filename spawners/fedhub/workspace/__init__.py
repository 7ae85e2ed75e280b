"""Files follow the user (issue 25): the folder that holds the same files at every centre a
user has used. So far: what the hub decides from its index of each user's workspace
(``plan.py``); the scans and transfers at the centres come next.
"""
