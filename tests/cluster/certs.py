"""Certificates and keys for the local control plane, made with the openssl CLI.

One CA signs the API server's serving certificate and one client certificate per identity
(admin in ``system:masters``, controller-manager, scheduler), so every component
authenticates the way it does in a real cluster and RBAC applies to each of them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# The in-cluster names clients use for the API server, plus loopback where it actually listens.
SERVING_SANS = (
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate's subject: CN is the user name, O the group."""

    name: str
    common_name: str
    organization: str | None = None


CLIENT_IDENTITIES = (
    ClientIdentity("admin", "indexforge-admin", "system:masters"),
    ClientIdentity("controller-manager", "system:kube-controller-manager"),
    ClientIdentity("scheduler", "system:kube-scheduler"),
)


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _subject(common_name: str, organization: str | None) -> str:
    return f"/CN={common_name}" + (f"/O={organization}" if organization else "")


def _signed_cert(pki: Path, name: str, subject: str, extensions: list[str]) -> None:
    key, csr, crt = pki / f"{name}.key", pki / f"{name}.csr", pki / f"{name}.crt"
    ext_args = [arg for ext in extensions for arg in ("-addext", ext)]
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", subject, *ext_args,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
        "-CAcreateserial", "-days", "30", "-copy_extensions", "copyall", "-out", str(crt),
    )  # fmt: skip
    csr.unlink()


def generate(pki: Path) -> None:
    """Write ca.{crt,key}, apiserver.{crt,key}, sa.{key,pub} and <identity>.{crt,key}."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / "ca.key"),
        "-out", str(pki / "ca.crt"), "-days", "30", "-subj", "/CN=indexforge-test-ca",
    )  # fmt: skip
    _signed_cert(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        ["subjectAltName=" + ",".join(SERVING_SANS), "extendedKeyUsage=serverAuth"],
    )
    for identity in CLIENT_IDENTITIES:
        _signed_cert(
            pki,
            identity.name,
            _subject(identity.common_name, identity.organization),
            ["extendedKeyUsage=clientAuth"],
        )
    # Service-account token signing pair (API server verifies, controller-manager signs).
    _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
