"""The secure node's TLS files: a CA, broker and client certificates, the stores, and an
unrelated CA, made with openssl and keytool."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from kafkalocal.failures import KafkaError, info
from kafkalocal.layout import SASL_USER, STORE_PASSWORD
from kafkalocal.processes import captured, find_java

TLS_DAYS = 30
# File names in the secure data dir.
TLS_FILES = {
    "ca": "ca.pem",  # the CA that signed broker.pem and client.pem
    "ca_key": "ca.key",  # kept: tests may sign more certificates with it
    "broker_cert": "broker.pem",  # SAN IP:127.0.0.1, DNS:localhost
    "broker_key": "broker.key",
    "keystore": "broker.keystore.p12",  # broker key + chain, STORE_PASSWORD
    "truststore": "truststore.p12",  # ca.pem only, STORE_PASSWORD (for Java clients too)
    "client_cert": "client.pem",  # CN=agent, clientAuth, signed by ca.pem (for mTLS tests)
    "client_key": "client.key",  # unencrypted PKCS#8
    "other_ca": "other-ca.pem",  # an unrelated CA that signed nothing ("wrong CA" tests)
    "client_properties": "client.properties",  # --command-config for `scripts/kafka tool`
}

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def secure_files(data_dir: str) -> dict[str, str]:
    return {key: str(Path(data_dir) / name) for key, name in TLS_FILES.items()}


def _run_checked(cmd: list[str], cwd: str, what: str) -> None:
    result = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, **captured())
    if result.returncode != 0:
        for line in result.stdout.strip().splitlines()[-10:]:
            info(f"  {Path(cmd[0]).name}: {line}")
        raise KafkaError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}")


def make_tls(data_dir: str) -> subprocess.Popen[str]:
    """CA, broker and client certificates, broker keystore, unrelated CA: all with openssl.

    Returns the running keytool that writes the truststore (a JVM); wait for it with
    finish_truststore().
    """
    openssl = shutil.which("openssl")
    keytool = shutil.which("keytool", path=str(Path(find_java()).resolve().parent))
    keytool = keytool or shutil.which("keytool")
    if openssl is None or keytool is None:
        raise KafkaError(
            "openssl and keytool are needed for --secure "
            "(Debian/Ubuntu: apt-get install openssl openjdk-17-jre-headless)"
        )
    f = TLS_FILES
    cnf = "openssl.cnf"
    Path(data_dir, cnf).write_text(OPENSSL_CNF)

    def ssl_run(options: str, *values: str) -> None:
        """openssl OPTIONS (split on spaces: plain file names, run in data_dir) VALUES..."""
        args = [openssl, *options.split(), *values]
        _run_checked(args, data_dir, f"openssl {options.split()[0]}")

    def new_key_and(request: str, key: str, out: str, subject: str) -> None:
        ssl_run(
            f"req {request} -config {cnf} -newkey rsa:2048 -nodes -keyout {key} -out {out}",
            "-subj",
            subject,
        )

    def new_ca(cert: str, key: str, subject: str) -> None:
        new_key_and(f"-x509 -extensions ca_ext -days {TLS_DAYS}", key, cert, subject)

    def new_leaf(cert: str, key: str, subject: str, extensions: str) -> None:
        csr = cert + ".csr"
        new_key_and("-new", key, csr, subject)
        ssl_run(
            f"x509 -req -in {csr} -CA {f['ca']} -CAkey {f['ca_key']} -days {TLS_DAYS} "
            f"-set_serial 0x{uuid.uuid4().hex} -extfile {cnf} -extensions {extensions} "
            f"-out {cert}"
        )
        Path(data_dir, csr).unlink()

    org = "/O=metrics-agent tests"
    new_ca(f["ca"], f["ca_key"], f"{org}/CN=scripts-kafka test CA")
    new_leaf(f["broker_cert"], f["broker_key"], f"{org}/CN=localhost", "server_ext")
    new_leaf(f["client_cert"], f["client_key"], f"{org}/CN={SASL_USER}", "client_ext")
    # A CA that signs nothing: trusting it instead of ca.pem must fail the handshake.
    new_ca(f["other_ca"], "other-ca.key", f"{org}/CN=scripts-kafka unrelated CA")
    Path(data_dir, "other-ca.key").unlink()
    ssl_run(
        f"pkcs12 -export -in {f['broker_cert']} -inkey {f['broker_key']} -certfile {f['ca']} "
        f"-name broker -out {f['keystore']} -passout pass:{STORE_PASSWORD}"
    )
    for key in ("ca_key", "broker_key", "client_key"):
        os.chmod(Path(data_dir, f[key]), 0o600)
    # keytool, not openssl: Java only trusts PKCS12 certificate entries keytool marks trusted.
    cmd = [
        keytool,
        *f"-importcert -noprompt -alias ca -file {f['ca']} -keystore {f['truststore']} "
        f"-storetype PKCS12 -storepass {STORE_PASSWORD}".split(),
    ]
    return subprocess.Popen(cmd, cwd=data_dir, stdin=subprocess.DEVNULL, **captured())


def finish_truststore(proc: subprocess.Popen[str]) -> None:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        for line in out.strip().splitlines()[-10:]:
            info(f"  keytool: {line}")
        raise KafkaError(f"keytool could not write the truststore (exit {proc.returncode})")
