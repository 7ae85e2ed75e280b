"""A valid federation document (two centres, logins, partitions, accounting) that the unit
tests change one field at a time."""

GOOD = {
    "version": 1,
    "centres": [
        {
            "id": "north",
            "name": "North",
            "scheduler": {"type": "local", "slurm_conf": "/etc/slurm/north.conf"},
            "hub_connect_url": "http://10.0.0.1:8081",
            "singleuser_cmd": "/opt/j/bin/jupyterhub-singleuser",
            "partitions": [
                {"name": "cpu", "max_cores": 8, "max_memory": "16G", "max_walltime": "08:00:00"},
                {"name": "gpu", "max_cores": 4, "max_memory": "32G", "max_walltime": "1-00:00:00",
                 "charge_rate": 3, "gpus": [{"type": "a100", "max": 2}, {"type": "dcu", "gres": "dcu", "max": 4}]},
            ],
        },
        {
            "id": "south",
            "scheduler": {"type": "ssh", "host": "login.south", "key_file": "/k", "query_user": "fedhub",
                          "known_hosts_file": "/etc/fedhub/known_hosts"},
            "hub_connect_url": "https://hub.example/",
            "cluster": "south-cluster",
            "singleuser_cmd": "/sw/bin/jupyterhub-singleuser",
            "logins": {"template": "fh_{username}", "map": {"alice": "asmith"}},
            "partitions": [{"name": "batch", "max_cores": 64, "max_memory": "1T", "max_walltime": "90"}],
        },
    ],
}
