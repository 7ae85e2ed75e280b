"""FedHub: one JupyterHub in front of a federation of independent Slurm centres.

Layers, lowest first; a module imports only from its own layer or below (tests/unit/test_layers.py
holds the code to it):

    foundation  runtime (the one holder of shared state), units, metrics, statedir, hub_tls, errors,
                i18n (the user's language and FedHub's words in it)
    model       federation, claims; logins, projects (who a hub user is at each centre)
    scheduler   slurm/ (speaking to Slurm, one job's lifecycle, ssh, tunnels)
    requests    request (user options: the one schema), jobs/ (server and kernel job builders,
                TLS, progress), placement, service_app
    features    quota/, classes/, kernels/, culling/, workspace/
    spawner     spawning/ (JupyterHub's spawner and its collaborators)
    hub         hub/ (configure_hub, login, the chart's settings, api/: every REST route)
    tools       cli (the testbed, centres and a hub on loopback, is its own distribution:
                spawners/testbed, fedhub_testbed)
"""

__version__ = "0.2.0"
