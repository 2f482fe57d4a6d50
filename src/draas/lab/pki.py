"""A throwaway certificate authority for the lab (and the tests): a CA, a server certificate
for the etcd members' addresses and a client certificate, made with ``openssl`` at run time
(never stored in the repository). Keys are mode 0600."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from draas.errors import CommandError

DAYS = "30"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    argv = ["openssl", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)


def _signed(d: Path, name: str, subject: str, ext: str) -> tuple[Path, Path]:
    key, csr, cert, extfile = (d / f"{name}{s}" for s in (".key", ".csr", ".pem", ".ext"))
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    key.chmod(0o600)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    extfile.write_text(ext + "\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(d / "ca.pem"),
        "-CAkey",
        str(d / "ca.key"),
        "-CAcreateserial",
        "-days",
        DAYS,
        "-extfile",
        str(extfile),
        "-out",
        str(cert),
    )
    csr.unlink()
    return cert, key


def make_pki(d: Path, addresses: list[str]) -> Pki:
    """A CA in ``d``, a server certificate valid for ``addresses`` (and 127.0.0.1), a client
    certificate. Made once: an existing set is returned as it is."""
    d.mkdir(parents=True, exist_ok=True)
    pki = Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")
    if all(p.exists() for p in (pki.ca, pki.server_cert, pki.client_cert)):
        return pki
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(pki.ca),
        "-days",
        DAYS,
        "-subj",
        "/CN=draas lab CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    )
    (d / "ca.key").chmod(0o600)
    sans = ",".join(f"IP:{a}" for a in dict.fromkeys([*addresses, "127.0.0.1"]))
    # clientAuth too: etcd's HTTP gateway dials its own gRPC server with this certificate, which
    # --client-cert-auth then checks as a client's.
    server_ext = f"subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth"
    _signed(d, "server", "/CN=etcd", server_ext)
    _signed(d, "client", "/CN=draas", "extendedKeyUsage=clientAuth")
    return pki
