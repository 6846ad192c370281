"""The SendGrid backend: the official client (``sendgrid.SendGridAPIClient``) posting to ``/v3/mail/send``.

One request per message (each customer's HTML is their own, so personalizations cannot be shared). Our
message id travels in ``custom_args`` (with the campaign, both opaque ids, never personal data) and in the
``X-Comms-Message-Id`` header, so webhook events find their message. The host is configurable
(COMMS_SENDGRID_HOST: the EU region, or a local fake in tests) and every request has a timeout (the
client has none by default).

Connection reuse: the official client opens a new connection per request (urllib). Here its documented
hook ``_make_request`` sends the same request over a pooled keep-alive ``http.client`` connection; URLs,
headers, JSON and error types stay the client's own. A request that meets a connection the server closed
while idle is sent again once on a new connection (nothing was received); any other failure is not.

Answers: 2xx -> queued (``X-Message-Id`` as provider id); 429 -> deferred until ``X-RateLimit-Reset``
(retried by the base loop when the wait is short); 5xx -> deferred with backoff; other 4xx -> failed with
SendGrid's reasons.
"""

from __future__ import annotations

import http.client
import io
import json
import ssl
import time
import urllib.error
from urllib.parse import urlsplit

import python_http_client
from python_http_client.exceptions import HTTPError, handle_error
from sendgrid import SendGridAPIClient

from ..errors import ConfigError
from .base import FEATURES, Backend, ConnectionPool, DeliveryResult, DeliveryStatus

DEFAULT_HOST = "https://api.sendgrid.com"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _Reply:
    """What python_http_client.Response reads from a urllib response."""

    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self):
        return self.headers


class _Conn:
    def __init__(self, http_conn: http.client.HTTPConnection):
        self.http = http_conn
        self.used = 0


class KeepAliveClient(python_http_client.Client):
    """python_http_client.Client whose requests go over pooled keep-alive connections."""

    def __init__(self, *args, pool: ConnectionPool, **kwargs):
        self.__dict__["_pool"] = pool  # before anything: Client.__getattr__ turns unknown names into URLs
        super().__init__(*args, **kwargs)

    def _build_client(self, name=None):
        url_path = self._url_path + [name] if name else self._url_path
        return KeepAliveClient(host=self.host, version=self._version, request_headers=self.request_headers,
                               url_path=url_path, append_slash=self.append_slash, timeout=self.timeout,
                               pool=self._pool)

    def _make_request(self, opener, request, timeout=None):
        timeout = timeout or self.timeout
        parts = urlsplit(request.full_url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = dict(request.header_items())
        for attempt in (1, 2):
            with self._pool.connection() as conn:
                conn.http.timeout = timeout
                if conn.http.sock is not None:
                    conn.http.sock.settimeout(timeout)
                try:
                    conn.http.request(request.get_method(), target, body=request.data, headers=headers)
                    response = conn.http.getresponse()
                    body = response.read()
                except _STALE:
                    if attempt == 1 and conn.used:
                        self._pool.discard(conn)
                        continue
                    raise
                conn.used += 1
                if response.will_close:
                    self._pool.discard(conn)
                break
        if response.status >= 400:
            raise handle_error(urllib.error.HTTPError(request.full_url, response.status, response.reason,
                                                      response.headers, io.BytesIO(body)))
        return _Reply(response.status, response.headers, body)


def _name(name: str) -> str:
    """SendGrid silently drops a message whose recipient name has an unquoted ',' or ';'."""
    if ("," in name or ";" in name) and not (name.startswith('"') and name.endswith('"')):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


class SendGridBackend(Backend):
    name = "sendgrid"
    supported = frozenset(FEATURES)

    def __init__(self, api_key: str, *, host: str = DEFAULT_HOST, timeout: float = 10.0,
                 sandbox: bool = False, keepalive: bool = True, ca_file: str | None = None, **kwargs):
        super().__init__(**kwargs)
        parts = urlsplit(host.rstrip("/"))
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError("COMMS_SENDGRID_HOST", f"must be an https URL, got {host!r}")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise ConfigError("COMMS_SENDGRID_HOST", f"refusing to send the API key over plain http to {host}")
        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.sandbox = sandbox
        self._parts = parts
        self._tls = ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None
        self.pool = ConnectionPool(self._connect, lambda c: c.http.close(), self.concurrency)
        self.client = SendGridAPIClient(api_key=api_key, host=self.host)
        if keepalive:
            self.client.client = KeepAliveClient(host=self.host, request_headers=self.client._default_headers,
                                                 version=3, timeout=self.timeout, pool=self.pool)
        else:
            self.client.client.timeout = self.timeout

    def _connect(self) -> _Conn:
        p = self._parts
        if p.scheme == "https":
            conn = http.client.HTTPSConnection(p.hostname, p.port or 443, timeout=self.timeout, context=self._tls)
        else:
            conn = http.client.HTTPConnection(p.hostname, p.port or 80, timeout=self.timeout)
        return _Conn(conn)

    def build_payload(self, email) -> dict:
        to = {"email": email.to}
        if email.to_name:
            to["name"] = _name(email.to_name)
        sender = {"email": email.from_address}
        if email.from_name:
            sender["name"] = email.from_name
        payload = {
            "personalizations": [{"to": [to]}],
            "from": sender,
            "subject": email.subject,
            "content": [{"type": "text/plain", "value": email.text}, {"type": "text/html", "value": email.html}],
            "headers": dict(email.headers),
            "custom_args": {"comms_message_id": email.message_id, "comms_campaign": email.campaign},
        }
        if email.reply_to:
            payload["reply_to"] = {"email": email.reply_to}
        if email.tags:
            payload["categories"] = [str(t)[:255] for t in email.tags][:10]
        if email.send_at:
            payload["send_at"] = int(email.send_at.timestamp())
        if self.sandbox:
            payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return payload

    def post(self, payload: dict, email) -> tuple[int, dict, bytes]:
        try:
            response = self.client.send(payload)
            return response.status_code, dict(response.headers or {}), response.body or b""
        except HTTPError as exc:
            return exc.status_code, dict(exc.headers or {}), exc.body or b""

    def parse_status(self, email, response: tuple[int, dict, bytes]) -> DeliveryResult:
        status, headers, body = response
        headers = {k.lower(): v for k, v in headers.items()}
        if 200 <= status < 300:
            return DeliveryResult(email.message_id, DeliveryStatus.QUEUED,
                                  provider_message_id=headers.get("x-message-id"))
        reason = _reasons(status, body)
        if status == 429:
            retry_after = None
            try:
                retry_after = max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
            except (KeyError, ValueError):
                pass
            return DeliveryResult(email.message_id, DeliveryStatus.DEFERRED, error=f"rate limited: {reason}",
                                  retry_after=retry_after)
        if status >= 500:
            return DeliveryResult(email.message_id, DeliveryStatus.DEFERRED, error=reason)
        return DeliveryResult(email.message_id, DeliveryStatus.FAILED, error=reason)

    def close(self) -> None:
        self.pool.close()


def _reasons(status: int, body: bytes) -> str:
    """'400: personalizations.0.to.0.email: Does not contain a valid address.' from SendGrid's JSON."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        errors = json.loads(text).get("errors") or []
        parts = [f"{e['field']}: {e['message']}" if e.get("field") else str(e.get("message")) for e in errors]
        if parts:
            return f"{status}: " + "; ".join(parts)
    except (ValueError, AttributeError, TypeError, KeyError):
        pass
    return f"{status}: {text[:300]}" if text else str(status)
