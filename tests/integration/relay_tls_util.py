"""relay_tls_util - a test CA and server certificates made with the openssl
CLI at test time (no private key is committed), and STARTTLS helpers."""
import os
import socket
import ssl
import subprocess

from conftest import require_tool
from relay_util import SmtpConn


def _openssl(*args, cwd):
    r = subprocess.run([require_tool("openssl"), *args], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"
    return r.stdout


class TestCA:
    """A CA in `folder` (ca.crt, ca.key) that issues server certificates for
    localhost and 127.0.0.1."""

    __test__ = False  # not a pytest class

    def __init__(self, folder, name="mxb test CA"):
        self.dir = folder
        os.makedirs(folder, exist_ok=True)
        self.crt = os.path.join(folder, "ca.crt")
        self.key = os.path.join(folder, "ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", self.key, "-out", self.crt, "-days", "2",
                 "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)

    def issue(self, name, cn="localhost"):
        """Write <name>.crt and <name>.key; returns (crt, key) paths."""
        crt = os.path.join(self.dir, f"{name}.crt")
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={cn}", cwd=self.dir)
        _openssl("x509", "-req", "-in", csr, "-CA", self.crt, "-CAkey", self.key,
                 "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext, cwd=self.dir)
        return crt, key

    def context(self):
        """A client context that trusts only this CA."""
        ctx = ssl.create_default_context(cafile=self.crt)
        return ctx


def tls_block(crt, key, more=""):
    return f'tls {{ certificate "{crt}"; key "{key}"; {more} }};'


class TlsSmtp(SmtpConn):
    """relay_util's raw SMTP connection (exact bytes, replies) that can also
    switch to TLS: at connect (implicit, with ctx) or by STARTTLS."""

    def __init__(self, host, port, ctx=None, implicit=False, timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""
        if implicit:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.banner = self.reply()

    def starttls(self, ctx):
        code, text = self.cmd("STARTTLS")
        assert code == 220, text
        assert self.buf == b"", f"plaintext after 220: {self.buf!r}"
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
