"""tls_util - a test CA and server certificates made with the openssl CLI
at test time (nothing private is committed), in a 0755 folder that
Postfix can read."""
import hashlib
import os
import shutil
import subprocess
import tempfile


def _run(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {args}: {r.stderr}"
    return r.stdout


class CA:
    """A CA (EC P-256) that signs server certificates for given names."""

    def __init__(self, name="mxbroker test CA"):
        self.dir = tempfile.mkdtemp(prefix="mxb-tls-")
        os.chmod(self.dir, 0o755)
        self.cert = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca.key")
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def server(self, cn, names=None):
        """(cert path, key path) for a server certificate of cn (+ names)."""
        names = names or [cn]
        base = os.path.join(self.dir, cn)
        key, csr, cert = base + ".key", base + ".csr", base + ".pem"
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
                    "extendedKeyUsage=serverAuth\n")
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        _run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
             "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        os.chmod(key, 0o644)  # test-only key; Postfix reads it as root anyway
        return cert, key

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def spki_sha256(cert):
    """The TLSA 3 1 1 data of a certificate: SHA-256 of its SubjectPublicKeyInfo."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def postfix_tls_extra(cert, key, extra=""):
    """main.cf lines for a Postfix smtpd offering STARTTLS with cert/key."""
    return (f"smtpd_tls_security_level = may\n"
            f"smtpd_tls_cert_file = {cert}\n"
            f"smtpd_tls_key_file = {key}\n"
            f"smtpd_tls_loglevel = 1\n"
            f"smtpd_tls_received_header = yes\n"
            f"smtpd_tls_session_cache_database =\n"
            f"{extra}")
