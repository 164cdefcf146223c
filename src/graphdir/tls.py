"""A local certificate authority and server certificate for ``graphdir serve --tls``.

MSAL and azure-identity accept only ``https://`` authorities (docs/behaviour.md#credentials-and-tls), so
graphdir can serve HTTPS with a certificate it issues itself. On first use it
creates, next to the SQLite file (``tls/`` unless ``tls_dir`` says otherwise):

* ``ca.pem`` / ``ca-key.pem`` — a CA (ECDSA P-256, ten years) to trust through
  ``SSL_CERT_FILE`` (httpx, aiohttp) and ``REQUESTS_CA_BUNDLE`` (requests, used by
  MSAL); ``graphdir ca-path`` prints its path;
* ``server.pem`` / ``server-key.pem`` — a server certificate signed by that CA for
  ``localhost``, ``127.0.0.1``, ``::1`` and the configured host.

The directory (when graphdir creates it) is readable by its owner only, and so are the keys.

Both are reused on later starts; the server certificate is reissued (by the same CA)
when it nears expiry or does not cover the host. The extensions satisfy Python's
``VERIFY_X509_STRICT`` (critical basicConstraints/keyUsage, SKI/AKI).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from graphdir.private_files import FILE_MODE, private_dir, tighten
from graphdir.settings import Settings

_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def tls_directory(settings: Settings) -> Path:
    return Path(settings.tls_dir) if settings.tls_dir else settings.data_dir / "tls"


def _hosts(host: str) -> list[str]:
    """Names the certificate covers: the loopback names and the configured host (for 0.0.0.0/:: the machine's name)."""
    names = ["localhost", "127.0.0.1", "::1"]
    extra = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if extra and extra not in names:
        names.append(extra)
    return names


def _san(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """A private key, owner-only (0600) whatever the umask, also when it replaces an older file."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), FILE_MODE)  # before the key is written
        fh.write(pem)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an EC private key")
    return key


def _new_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphdir"), x509.NameAttribute(NameOID.COMMON_NAME, f"graphdir local CA ({socket.gethostname()})")]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                          key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )  # fmt: skip
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / "ca-key.pem", key)
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _new_server(directory: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphdir"), x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                          key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(directory / "server-key.pem", key)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    (directory / "server.pem").write_bytes(chain)


def _server_ok(path: Path, ca: x509.Certificate, names: list[str]) -> bool:
    if not path.exists() or not path.with_name("server-key.pem").exists():
        return False
    try:
        cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    if cert.issuer != ca.subject or cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < _RENEW_BEFORE:
        return False
    return all(g in list(san) for g in _san(names))


def ensure(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Create (once) and return the CA and server certificate files in ``directory``.

    The directory, when graphdir creates it, is owner-only (0700), and so are the private keys
    (0600); keys found readable by others are tightened (graphdir.private_files)."""
    private_dir(directory)
    ca_file, ca_key_file = directory / "ca.pem", directory / "ca-key.pem"
    for key_file in (ca_key_file, directory / "server-key.pem"):
        tighten(key_file)
    if ca_file.exists() and ca_key_file.exists():
        ca, ca_key = x509.load_pem_x509_certificate(ca_file.read_bytes()), _load_key(ca_key_file)
    else:
        ca, ca_key = _new_ca(directory)
    names = _hosts(host)
    if not _server_ok(directory / "server.pem", ca, names):
        _new_server(directory, ca, ca_key, names)
    return TlsFiles(ca_file, directory / "server.pem", directory / "server-key.pem")


def files_for(settings: Settings) -> TlsFiles:
    """The certificate to serve: ``tls_cert``/``tls_key`` when set, else the generated one."""
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise ValueError("tls_cert and tls_key must be set together")
        return TlsFiles(Path(settings.tls_cert), Path(settings.tls_cert), Path(settings.tls_key))
    return ensure(tls_directory(settings), settings.host)
