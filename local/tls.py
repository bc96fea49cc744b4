"""A self-signed certificate for the local RTMPS port, so the TLS path is tested before it meets the NLB's
TLS listener in AWS (where ACM's certificate terminates TLS and the task speaks plain RTMP)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 30


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """(certificate, key) PEM files for `host` (a name or an IP address) in `directory`, made once and
    reused while valid for at least a day more. The key is P-256 and readable by the owner only."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    now = datetime.datetime.now(datetime.UTC)
    if cert_path.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if existing.not_valid_after_utc - now > datetime.timedelta(days=1) and _alt_name(host) in names:
            return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "StreamForge local RTMPS")])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_alt_name(host), x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    # Written aside and renamed, so a platform starting beside this one never reads half a file.
    staged_key, staged_cert = directory / f"key.{os.getpid()}", directory / f"cert.{os.getpid()}"
    staged_key.touch(mode=0o600)
    staged_key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    staged_cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    os.replace(staged_key, key_path)
    os.replace(staged_cert, cert_path)
    return cert_path, key_path


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
