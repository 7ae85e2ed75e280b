"""FedHub's hub configuration. An operator sets traitlets here and describes the centres in the
federation file; nothing else configures FedHub.

A site config may replace any setting below, loaded last: the file FEDHUB_SITE_CONFIG names
(the Helm chart's, from its values), else ``fedhub_site_config.py`` in the hub's working
directory (the demo and the test suite write one).
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

site = os.environ.get("FEDHUB_SITE_CONFIG")
if site and not os.path.exists(site):
    raise SystemExit(f"FedHub cannot start: FEDHUB_SITE_CONFIG names {site}, which does not exist")
site = site or os.path.join(os.getcwd(), "fedhub_site_config.py")
if os.path.exists(site):
    load_subconfig(site)  # noqa: F821

configure_hub(c)
