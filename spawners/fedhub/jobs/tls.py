"""TLS for a job: the key and certificates that JupyterHub's internal SSL gives a notebook server
(or a kernel launcher), carried to the centre and put where only the job's user can read them.

JupyterHub makes the certificates (``c.JupyterHub.internal_ssl``: its certipy CA in the hub's
state directory). The hub asks every caller of its API for a certificate of that CA and the job
accepts only a hub whose certificate chains to it; so a job needs its key, its certificate and
the CA bundle. They travel like the job's tokens: in the submission's secrets file (0600, written
through stdin as the login), which the job script reads first. The script then writes them into
a fresh ``mktemp -d`` directory (0700) on the compute node and points JupyterHub's variables
(``JUPYTERHUB_SSL_KEYFILE``, ``..._CERTFILE``, ``..._CLIENT_CA``) at those files. Nothing of them
is in the job's environment as Slurm keeps it, its argv or its script.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from pathlib import Path

from .. import runtime
from ..federation import Centre

# Names in the secrets file (the secrets file carries every variable whose name says SECRET).
SECRET_VARS = {"keyfile": "FEDHUB_SECRET_TLS_KEY", "certfile": "FEDHUB_SECRET_TLS_CERT",
               "cafile": "FEDHUB_SECRET_TLS_CA"}
JUPYTERHUB_VARS = {"keyfile": "JUPYTERHUB_SSL_KEYFILE", "certfile": "JUPYTERHUB_SSL_CERTFILE",
                   "cafile": "JUPYTERHUB_SSL_CLIENT_CA"}
# what JupyterHub is told the server's TLS files are (create_certs): the job script writes them
# into a private directory it makes on the node and exports the real paths (script_lines)
NODE_PATHS = {"keyfile": "/fedhub-tls-written-on-the-node/server.key",
              "certfile": "/fedhub-tls-written-on-the-node/server.crt",
              "cafile": "/fedhub-tls-written-on-the-node/ca.crt"}
NOTEBOOKS_CA = "notebooks-ca"  # JupyterHub's CA for notebook servers; the hub and proxy trust it


def read_pems(paths: dict[str, str]) -> dict[str, str]:
    """The job's TLS files' contents (read on the hub, where certipy wrote them)."""
    return {name: Path(paths[name]).read_text() for name in SECRET_VARS}


def secret_env(pems: dict[str, str]) -> dict[str, str]:
    """The variables that carry the job's TLS files in its secrets file."""
    return {SECRET_VARS[name]: text for name, text in pems.items()}


def script_lines(target_vars: dict[str, str] = JUPYTERHUB_VARS) -> str:
    """Shell lines that write the TLS files from the secrets into a private directory on the
    node and export ``target_vars`` naming them. Without the secrets (internal SSL off) they
    do nothing."""
    files = {"keyfile": "server.key", "certfile": "server.crt", "cafile": "ca.crt"}
    writes = "\n".join(
        f'  printf \'%s\\n\' "${SECRET_VARS[name]}" > "$fedhub_tls/{files[name]}"\n'
        f'  export {target_vars[name]}="$fedhub_tls/{files[name]}"'
        for name in SECRET_VARS)
    return (f'if [ -n "${{{SECRET_VARS["keyfile"]}:-}}" ]; then\n'
            f'  fedhub_tls=$(umask 077 && mktemp -d "${{TMPDIR:-/tmp}}/fedhub-tls.XXXXXXXX")\n'
            f"  umask 077\n{writes}\n  umask 022\n"
            f"  unset {' '.join(SECRET_VARS.values())} fedhub_tls\n"
            "fi")


def alt_names(centre: Centre | None) -> list[str]:
    """Names a server's certificate carries beside localhost: its centre's node addresses (the
    proxy and the hub reach a direct centre's server there; a tunnel centre's at the hub's loopback)."""
    if centre is None:
        return []
    return [_alt_name(address) for address in sorted(set(centre.node_addresses.values()))]


def hub_alt_names(urls) -> list[str]:
    """The names jobs reach the hub's API by (``hub_connect_url``, a login node's address): the
    hub's certificate must carry them, or the jobs refuse it."""
    return sorted({_alt_name(host) for host in urls if host})


def _alt_name(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return f"IP:{host}"
    except ValueError:
        return f"DNS:{host}"


async def client_pair(certs_location: str, trust_bundle: str, user: str, kind: str = "kernel") -> dict[str, str]:
    """A key and certificate of the notebooks' CA for a job that only calls the hub (a kernel
    launcher), with the CA bundle a job checks the hub by."""
    return await signed_pair(certs_location, trust_bundle, f"{kind}-{user}-{secrets.token_hex(4)}",
                             ["DNS:localhost"])


async def signed_pair(certs_location: str, trust_bundle: str, common_name: str, alt_names: list[str]) -> dict[str, str]:
    """A key (EC P-256) and a certificate of the notebooks' CA naming ``alt_names`` ("DNS:..",
    "IP:.."), as PEM text, with the CA bundle. Signed in memory, off the event loop: nothing is
    written to the hub's certificate store, so starts at the same moment cannot disturb each
    other's records, and no RSA key is generated (certipy's took the event loop ~0.1 s a spawn)."""
    def make() -> dict[str, str]:
        import datetime
        import ipaddress
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        ca_key, ca_cert, bundle = _signing_ca(certs_location, trust_bundle)
        key = ec.generate_private_key(ec.SECP256R1())
        names = []
        for alt in dict.fromkeys(alt_names):
            kind, _, value = alt.partition(":")
            names.append(x509.IPAddress(ipaddress.ip_address(value)) if kind == "IP" else x509.DNSName(value))
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                      ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return {"keyfile": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
                "certfile": cert.public_bytes(serialization.Encoding.PEM).decode(),
                "cafile": bundle}
    return await asyncio.get_running_loop().run_in_executor(None, make)


def _signing_ca(certs_location: str, trust_bundle: str):
    """The notebooks' CA key and certificate and the trust bundle's text, read once per process
    (again only if a file changes): loading the CA's RSA key checks it, about 30 ms of CPU that
    every server's and kernel's start paid."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    ca_dir = Path(certs_location) / NOTEBOOKS_CA
    files = (ca_dir / f"{NOTEBOOKS_CA}.key", ca_dir / f"{NOTEBOOKS_CA}.crt", Path(trust_bundle))
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    cache = runtime.current().signing_cas
    if stamp not in cache:
        cache.clear()
        cache[stamp] = (serialization.load_pem_private_key(files[0].read_bytes(), None),
                        x509.load_pem_x509_certificate(files[1].read_bytes()), files[2].read_text())
    return cache[stamp]


def forget_hub_certificate_without(location: str, names: list[str]) -> None:
    """JupyterHub makes the hub's certificate once; when the federation gains an address jobs
    reach the hub by, drop it (not the CA) so the hub makes it again with every name."""
    path = Path(location) / "hub-internal" / "hub-internal.crt"
    if not path.exists():
        return
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = []
    have = {f"DNS:{n.value}" if isinstance(n, x509.DNSName) else f"IP:{n.value}" for n in sans
            if isinstance(n, (x509.DNSName, x509.IPAddress))}
    if set(names) - have:
        from certipy import Certipy
        store = Certipy(store_dir=location).store
        store.remove_files("hub-internal", delete_dir=True)
        store.remove_record("hub-internal")
