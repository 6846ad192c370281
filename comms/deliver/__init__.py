"""Delivery: a finished message (comms.render.email.RenderedEmail) handed to a backend.

Backends (COMMS_EMAIL_BACKEND): ``outbox`` (default: .eml files under the home folder), ``smtp``,
``sendgrid``, ``memory`` (tests). All share the send loop of ``base.Backend``::

    with backend_from_settings(settings) as backend:
        result = backend.send(email)                   # DeliveryResult(status, provider_message_id, error)
        results = backend.send_many(emails)            # bounded concurrency, connections reused

Settings (argument > environment COMMS_* > config file > default; see comms.config):

    email_backend        outbox | smtp | sendgrid | memory                  (outbox)
    email_concurrency    messages in flight in send_many                     (8)
    email_max_attempts   tries per message for temporary refusals            (3)
    email_backoff        first backoff in seconds, doubled per try           (0.5)
    email_max_wait       longest wait honoured in place (429), else deferred (60)
    email_rate           requests per second across all workers, a shared token bucket (none)
    email_burst          requests the bucket lets through at once (one second's worth)
    outbox_dir           where the outbox writes                             (<home>/outbox)
    smtp_host, smtp_port, smtp_security (starttls|ssl|none), smtp_username, smtp_password,
    smtp_timeout (30), smtp_ca_file, smtp_max_per_connection (100)
    sendgrid_api_key (required for sendgrid), sendgrid_host (https://api.sendgrid.com),
    sendgrid_timeout (10), sendgrid_sandbox (false), sendgrid_ca_file
"""

from __future__ import annotations

from ..config import Settings
from ..errors import ConfigError
from .base import (ACCEPTED, Backend, ConnectionPool, DeliveryError, DeliveryResult, DeliveryStatus,
                   UnsupportedFeature)

BACKENDS = ("outbox", "smtp", "sendgrid", "memory")


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def backend_from_settings(settings: Settings, name: str | None = None) -> Backend:
    """The configured backend (``name`` overrides COMMS_EMAIL_BACKEND). Use it as a context manager."""
    choice = str(settings.get("email_backend", name, default="outbox")).strip().lower()
    common = dict(
        concurrency=settings.get("email_concurrency", default=8, cast=int),
        max_attempts=settings.get("email_max_attempts", default=3, cast=int),
        backoff=settings.get("email_backoff", default=0.5, cast=float),
        max_wait=settings.get("email_max_wait", default=60.0, cast=float),
    )
    if choice == "outbox":
        from .outbox import OutboxBackend
        return OutboxBackend(settings.outbox_dir, **common)
    if choice == "memory":
        from .memory import MemoryBackend
        return MemoryBackend(**common)
    if choice == "smtp":
        from .smtp import SMTPBackend
        return SMTPBackend(
            host=settings.get("smtp_host", default="localhost"),
            port=settings.get("smtp_port", default=None, cast=int),
            security=str(settings.get("smtp_security", default="starttls")).lower(),
            username=settings.get("smtp_username", default=None),
            password=settings.get("smtp_password", default=None),
            timeout=settings.get("smtp_timeout", default=30.0, cast=float),
            ca_file=settings.get("smtp_ca_file", default=None),
            max_per_connection=settings.get("smtp_max_per_connection", default=100, cast=int),
            **common)
    if choice == "sendgrid":
        from .sendgrid import DEFAULT_HOST, SendGridBackend
        return SendGridBackend(
            settings.get("sendgrid_api_key"),
            host=settings.get("sendgrid_host", default=DEFAULT_HOST),
            timeout=settings.get("sendgrid_timeout", default=10.0, cast=float),
            sandbox=settings.get("sendgrid_sandbox", default=False, cast=_bool),
            ca_file=settings.get("sendgrid_ca_file", default=None),
            **common)
    raise ConfigError("COMMS_EMAIL_BACKEND", f"unknown backend {choice!r}; use one of {', '.join(BACKENDS)}")


__all__ = ["ACCEPTED", "BACKENDS", "Backend", "ConnectionPool", "DeliveryError", "DeliveryResult",
           "DeliveryStatus", "UnsupportedFeature", "backend_from_settings"]
