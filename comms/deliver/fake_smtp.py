"""A real SMTP server on loopback (aiosmtpd, a dev dependency) that records what it receives.

For tests and benchmarks of the SMTP backend::

    with RecordingSMTP(tls="starttls", users={"robot": "secret"}, cert_dir=tmp_path) as server:
        backend = SMTPBackend(server.host, server.port, security="starttls", username="robot",
                              password="secret", ca_file=server.ca_file)
        ...
        server.messages[0].message["Subject"]      # parsed with Python's email parser
        server.connections                          # how many connections clients opened

``tls``: None (plain), "starttls" (STARTTLS required before AUTH and MAIL) or "ssl" (implicit TLS).
``refuse``: {address: "550 5.1.1 no such user"} answers RCPT for that address with that line.
The certificate is self-signed for 127.0.0.1 and localhost; ``ca_file`` is what a client must trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import threading
import warnings
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


warnings.filterwarnings("ignore", message="Session.login_data is deprecated")  # aiosmtpd's own use


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1/localhost, valid for a day, usable as its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "comms test SMTP")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    mail_options: list[str]


class _Handler:
    def __init__(self, server: "RecordingSMTP"):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.server.refuse.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if not self.server.keep:
            with self.server._lock:
                self.server.count += 1
                n = self.server.count
            return f"250 2.0.0 Ok: queued as FAKE{n:06d}"
        message = BytesParser(policy=policy.default).parsebytes(data)
        with self.server._lock:
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), data, message,
                                                 list(envelope.mail_options)))
            self.server.count += 1
            n = self.server.count
        return f"250 2.0.0 Ok: queued as FAKE{n:06d}"


class _Controller(Controller):
    """aiosmtpd's Controller on a free port, counting connections."""

    def __init__(self, owner: "RecordingSMTP", *args, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        with self.owner._lock:
            self.owner.connections += 1
        with warnings.catch_warnings():  # AUTH over implicit TLS: aiosmtpd cannot tell it is encrypted
            warnings.simplefilter("ignore")
            return super().factory()

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class RecordingSMTP:
    def __init__(self, *, tls: str | None = None, users: dict[str, str] | None = None,
                 refuse: dict[str, str] | None = None, cert_dir: Path | None = None, keep: bool = True):
        self.tls = tls
        self.users = users or {}
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.keep = keep
        self.messages: list[Received] = []
        self.connections = 0
        self.count = 0
        self._lock = threading.Lock()
        self.host = "127.0.0.1"
        self.ca_file: Path | None = None
        kwargs: dict = {"hostname": self.host, "port": 0, "data_size_limit": 40 * 1024 * 1024,
                        "decode_data": False}
        if tls:
            folder = Path(cert_dir) if cert_dir else Path(tempfile.mkdtemp(prefix="comms-smtp-"))
            cert, key = self_signed_certificate(folder)
            self.ca_file = cert
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            if tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            elif tls == "ssl":
                kwargs.update(ssl_context=context)
            else:
                raise ValueError("tls must be None, 'starttls' or 'ssl'")
        if self.users:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=tls == "starttls")
        self._controller = _Controller(self, _Handler(self), **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> "RecordingSMTP":
        self._controller.start()
        with self._lock:
            self.connections = 0  # the controller's own start-up probe is not a client
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "RecordingSMTP":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve plain SMTP on 127.0.0.1 (free port printed first), counting messages without keeping them."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description="A recording SMTP server on loopback (for benchmarks).")
    parser.parse_args(argv)
    server = RecordingSMTP(keep=False).start()
    print(server.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
