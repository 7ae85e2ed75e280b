"""FedHub's hub configuration. An operator sets traitlets here and describes the centres in the
federation file; nothing else configures FedHub.

A site config may replace any setting below: ``fedhub_site_config.py`` in the hub's working
directory is loaded last (the demo and the test suite write one; a deployment can mount one).
"""

import os

from fedhub.hub.setup import configure_hub

c = get_config()  # noqa: F821
here = os.path.dirname(os.path.abspath(__file__))

# Where users reach the hub, and where the hub's API listens for the notebook servers.
c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.public_url = "http://127.0.0.1:8000/"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = 8081

# The centres: partitions, logins, accounting (see the README's "The federation file").
c.FederatedSpawner.federation_file = os.path.join(here, "federation.yaml")
# FedHub's own state (owed scancels, the hub's identity): private, kept across restarts.
c.FederatedSpawner.state_dir = "/var/lib/fedhub"
# The quota service (runs under the hub when a centre keeps accounts).
c.QuotaService.port = 8082
c.QuotaService.max_age = 60

site = os.path.join(os.getcwd(), "fedhub_site_config.py")
if os.path.exists(site):
    load_subconfig(site)  # noqa: F821

configure_hub(c)
