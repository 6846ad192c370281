"""The SMTP backend: implicit TLS (``ssl``, port 465) or STARTTLS (port 587), login, connection reuse.

Each worker borrows an open, logged-in connection from a pool and sends message after message over it
(MAIL, RCPT, DATA), reconnecting after ``max_per_connection`` messages or when the server has closed an
idle connection (detected before anything of the message was accepted, so the retry cannot duplicate).
Messages go as 8bit with ``BODY=8BITMIME`` when the server offers it, else re-encoded to 7bit.

Answers: 250 -> sent (the server's queue id as provider id); 4xx -> deferred (retried, then left to the
caller); 5xx on the recipient or the content -> rejected; 5xx on the sender -> failed. A refused login is
a configuration error (ConfigError naming COMMS_SMTP_USERNAME), never retried message by message.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass

from ..errors import ConfigError
from .base import Backend, ConnectionPool, DeliveryResult, DeliveryStatus

SECURITY = ("starttls", "ssl", "none")
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_QUEUE_ID = re.compile(r"queued as\s+<?([A-Za-z0-9._@-]+)", re.I)


@dataclass
class _Answer:
    stage: str      # "mail", "rcpt", "data"
    code: int
    text: str


class _Connection:
    def __init__(self, smtp: smtplib.SMTP):
        self.smtp = smtp
        self.sent = 0
        self.in_data = False
        self.eight_bit = smtp.has_extn("8bitmime")


class SMTPBackend(Backend):
    name = "smtp"
    supported = frozenset()

    def __init__(self, host: str = "localhost", port: int | None = None, *, security: str = "starttls",
                 username: str | None = None, password: str | None = None, timeout: float = 30.0,
                 ca_file: str | None = None, local_hostname: str | None = None,
                 max_per_connection: int = 100, **kwargs):
        super().__init__(**kwargs)
        if security not in SECURITY:
            raise ConfigError("COMMS_SMTP_SECURITY", f"must be one of {', '.join(SECURITY)}, got {security!r}")
        self.host = host
        self.port = int(port or {"ssl": 465, "starttls": 587, "none": 25}[security])
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.max_per_connection = max(1, int(max_per_connection))
        if security == "none" and username and host not in LOOPBACK:
            raise ConfigError("COMMS_SMTP_SECURITY", f"refusing to send the SMTP password unencrypted to "
                              f"{host}: use starttls or ssl")
        self.tls = ssl.create_default_context(cafile=ca_file) if security != "none" else None
        self.pool = ConnectionPool(self._connect, self._quit, self.concurrency)

    # -- connections -------------------------------------------------------------------------------------

    def _connect(self) -> _Connection:
        try:
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, local_hostname=self.local_hostname,
                                        timeout=self.timeout, context=self.tls)
            else:
                smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname,
                                    timeout=self.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise ConfigError("COMMS_SMTP_CA_FILE", f"{self.host}:{self.port}: certificate not trusted: "
                              f"{exc.verify_message}") from None
        try:
            # No Nagle: a message's last TLS record must not wait for the server's delayed ACK (40 ms).
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=self.tls)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise ConfigError("COMMS_SMTP_USERNAME", f"{self.host}:{self.port} refused the login: "
                              f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        except ssl.SSLCertVerificationError as exc:
            smtp.close()
            raise ConfigError("COMMS_SMTP_CA_FILE", f"{self.host}:{self.port}: certificate not trusted: "
                              f"{exc.verify_message}") from None
        except smtplib.SMTPNotSupportedError as exc:
            smtp.close()
            raise ConfigError("COMMS_SMTP_SECURITY", f"{self.host}:{self.port}: {exc}") from None
        except BaseException:
            smtp.close()
            raise
        return _Connection(smtp)

    @staticmethod
    def _quit(conn: _Connection) -> None:
        try:
            conn.smtp.quit()
        except (smtplib.SMTPException, OSError):
            conn.smtp.close()

    # -- the hooks ---------------------------------------------------------------------------------------

    def build_payload(self, email) -> tuple[str, str]:
        return email.from_address, email.to

    def post(self, payload: tuple[str, str], email) -> _Answer:
        sender, recipient = payload
        for attempt in (1, 2):
            with self.pool.connection() as conn:
                try:
                    answer = self._transaction(conn, sender, recipient, email)
                except smtplib.SMTPServerDisconnected:
                    if attempt == 1 and conn.sent and not conn.in_data:
                        self.pool.discard(conn)  # the server closed an idle connection: nothing was sent
                        continue
                    raise
                conn.sent += 1
                if conn.sent >= self.max_per_connection:
                    self.pool.discard(conn)
                return answer
        raise smtplib.SMTPServerDisconnected("connection lost twice")

    def _transaction(self, conn: _Connection, sender: str, recipient: str, email) -> _Answer:
        smtp = conn.smtp
        conn.in_data = False
        options = ["BODY=8BITMIME"] if conn.eight_bit else []
        code, text = smtp.mail(sender, options)
        if code != 250:
            smtp.rset()
            return _Answer("mail", code, _text(text))
        code, text = smtp.rcpt(recipient)
        if code not in (250, 251):
            smtp.rset()
            return _Answer("rcpt", code, _text(text))
        conn.in_data = True
        try:
            code, text = smtp.data(email.mime_bytes(seven_bit=not conn.eight_bit))
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354): nothing was accepted
            code, text = exc.smtp_code, exc.smtp_error
        conn.in_data = False
        if code != 250:
            smtp.rset()
        return _Answer("data", code, _text(text))

    def parse_status(self, email, response: _Answer) -> DeliveryResult:
        if response.code == 250 and response.stage == "data":
            found = _QUEUE_ID.search(response.text)
            provider_id = found.group(1) if found else email.headers.get("Message-ID")
            return DeliveryResult(email.message_id, DeliveryStatus.SENT, provider_message_id=provider_id)
        reason = f"{response.stage.upper()} {response.code} {response.text}"
        if 400 <= response.code < 500:
            return DeliveryResult(email.message_id, DeliveryStatus.DEFERRED, error=reason)
        status = DeliveryStatus.FAILED if response.stage == "mail" else DeliveryStatus.REJECTED
        return DeliveryResult(email.message_id, status, error=reason)

    def transport_error(self, email, exc: Exception) -> DeliveryResult:
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryResult(email.message_id, DeliveryStatus.FAILED,
                                  error=f"connection lost during the transaction ({exc}); not retried")
        return super().transport_error(email, exc)

    def close(self) -> None:
        self.pool.close()


def _text(value) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).replace("\n", " ")
