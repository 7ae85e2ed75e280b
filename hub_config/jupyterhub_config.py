"""FedHub's hub configuration. Operators edit the federation file, not this.

Environment:
  FEDHUB_FEDERATION   path of the federation file (default: federation.yaml next to this file)
  FEDHUB_HUB_IP/PORT  where the hub's API listens (must be reachable from compute nodes)
  FEDHUB_BIND_URL     where the proxy listens (default http://127.0.0.1:8000)
  FEDHUB_PUBLIC_URL   the URL users and the centres' notebook servers reach the hub at
                      (default: FEDHUB_BIND_URL); servers find the quota service under it
  FEDHUB_PROXY_API_URL  the proxy's own API (default http://127.0.0.1:8001)
  FEDHUB_DEMO_USERS   demo only: comma-separated users allowed to log in with FEDHUB_DEMO_PASSWORD
  FEDHUB_API_TOKEN    if set, registered as an admin API token for scripts
"""

import os

from spawners.hubsetup import configure, register_admin_token

here = os.path.dirname(os.path.abspath(__file__))
configure(c, os.environ.get("FEDHUB_FEDERATION", os.path.join(here, "federation.yaml")))  # noqa: F821

c.JupyterHub.bind_url = os.environ.get("FEDHUB_BIND_URL", "http://127.0.0.1:8000")  # noqa: F821
c.JupyterHub.public_url = os.environ.get("FEDHUB_PUBLIC_URL", c.JupyterHub.bind_url).rstrip("/") + "/"  # noqa: F821
c.JupyterHub.hub_ip = os.environ.get("FEDHUB_HUB_IP", "127.0.0.1")  # noqa: F821
c.JupyterHub.hub_port = int(os.environ.get("FEDHUB_HUB_PORT", "8081"))  # noqa: F821
if os.environ.get("FEDHUB_PROXY_API_URL"):
    c.ConfigurableHTTPProxy.api_url = os.environ["FEDHUB_PROXY_API_URL"]  # noqa: F821

if os.environ.get("FEDHUB_DEMO_USERS"):
    # The demo's login: fixed users and one password. A real federation uses OAuth instead.
    c.JupyterHub.authenticator_class = "dummy"  # noqa: F821
    c.DummyAuthenticator.password = os.environ["FEDHUB_DEMO_PASSWORD"]  # noqa: F821
    c.Authenticator.allowed_users = set(os.environ["FEDHUB_DEMO_USERS"].split(","))  # noqa: F821

if os.environ.get("FEDHUB_API_TOKEN"):
    register_admin_token(c, os.environ["FEDHUB_API_TOKEN"])  # noqa: F821
