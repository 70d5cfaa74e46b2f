"""tls_util - a test CA and server certificates made with the openssl CLI at
test time (nothing private is committed), in a 0755 folder that Postfix can
read; a raw SMTP connection that can switch to TLS; config and main.cf
snippets for TLS."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

import mxb
from conftest import require_tool
from relay_util import SmtpConn


def _openssl(*args, cwd=None):
    r = subprocess.run([require_tool("openssl"), *args], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"
    return r.stdout


class CA:
    """A CA (EC P-256) in `folder` (a new temporary one when None) that
    issues server certificates; .cert and .key are its own files."""

    def __init__(self, folder=None, name="mxbroker test CA"):
        self.dir = folder or tempfile.mkdtemp(prefix="mxb-tls-")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.cert = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
                 "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def server(self, cn, names=None, ips=(), file=None):
        """(cert path, key path) of a server certificate for cn, its
        subjectAltName the DNS names (default [cn]) and IP addresses; the
        files are <file or cn>.pem and .key."""
        names = names or [cn]
        base = os.path.join(self.dir, file or cn)
        key, csr, cert, ext = base + ".key", base + ".csr", base + ".pem", base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join([f"DNS:{n}" for n in names] +
                                                 [f"IP:{a}" for a in ips]) + "\n"
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                 "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        os.chmod(key, 0o644)  # test-only key; Postfix reads it as root anyway
        return cert, key

    def issue(self, file):
        """A certificate for localhost and 127.0.0.1 in <file>.pem/.key."""
        return self.server("localhost", ["localhost"], ["127.0.0.1"], file=file)

    def context(self):
        """A client context that trusts only this CA."""
        return ssl.create_default_context(cafile=self.cert)

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


def tls_block(crt, key, more=""):
    """smtp-relayd's relay { tls { } } statement."""
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


def start_nginx(daemons, d, port, servers):
    """A private nginx (foreground, as root) in folder d with the given
    `server { }` blocks; returns its daemon once 127.0.0.1:port answers."""
    conf = daemons.write("nginx.conf", (
        f"user root; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx.err;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log {d}/nginx.access; default_type application/octet-stream;\n"
        "  types { text/plain txt; }\n"
        f"  client_body_temp_path {d}/nginx-tmp; proxy_temp_path {d}/nginx-tmp;\n"
        f"  fastcgi_temp_path {d}/nginx-tmp; uwsgi_temp_path {d}/nginx-tmp;\n"
        f"  scgi_temp_path {d}/nginx-tmp;\n" + "".join(servers) + "}\n"))
    os.makedirs(os.path.join(d, "nginx-tmp"), exist_ok=True)
    return daemons.start("nginx", [require_tool("nginx"), "-c", conf, "-p", d, "-g", "daemon off;"],
                         ready=mxb.tcp_open("127.0.0.1", port))
