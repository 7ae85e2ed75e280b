"""The key and certificate a server's or kernel's job gets: EC, signed by the notebooks' CA for the
names asked, with the CA bundle; the CA is read once per process, and again when it is replaced."""

from __future__ import annotations

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from fedhub.jobs import tls


def write_ca(location, name: str) -> x509.Certificate:
    """A CA where JupyterHub's internal SSL keeps the notebooks' one."""
    key = rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    folder = location / tls.NOTEBOOKS_CA
    folder.mkdir(exist_ok=True)
    (folder / f"{tls.NOTEBOOKS_CA}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / f"{tls.NOTEBOOKS_CA}.crt").write_bytes(pem)
    (location / "bundle.crt").write_bytes(pem)
    return cert


async def test_a_pair_is_an_ec_key_signed_by_the_ca_for_the_names_asked(tmp_path):
    ca = write_ca(tmp_path, "FedHub notebooks CA")
    pair = await tls.signed_pair(str(tmp_path), str(tmp_path / "bundle.crt"), "alice-server",
                                 ["DNS:node1", "IP:10.0.0.7", "DNS:node1"])
    cert = x509.load_pem_x509_certificate(pair["certfile"].encode())
    cert.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key(pair["keyfile"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key() == cert.public_key()
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["node1", "10.0.0.7"]
    assert pair["cafile"] == (tmp_path / "bundle.crt").read_text()


async def test_a_replaced_ca_signs_the_next_pair(tmp_path):
    bundle = str(tmp_path / "bundle.crt")
    first = write_ca(tmp_path, "first CA")
    pair = await tls.client_pair(str(tmp_path), bundle, "alice")
    x509.load_pem_x509_certificate(pair["certfile"].encode()).verify_directly_issued_by(first)
    second = write_ca(tmp_path, "second CA")
    for path in (tmp_path / tls.NOTEBOOKS_CA).iterdir():  # a rotation within the same clock tick still counts
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    pair = await tls.client_pair(str(tmp_path), bundle, "alice")
    cert = x509.load_pem_x509_certificate(pair["certfile"].encode())
    cert.verify_directly_issued_by(second)
    assert pair["cafile"] == (tmp_path / "bundle.crt").read_text()
