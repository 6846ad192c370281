"""Payment-link tokens: signed, encrypted, expiring; the one thing every channel carries to the customer.

A token names a campaign and a customer without showing either: it is an AEAD ciphertext, so it is both
unreadable and unforgeable without the key. Layout (then base64url without padding)::

    version (1 byte) | key id (1 byte) | nonce (12 bytes) | ciphertext + tag (16 bytes)
    plaintext: issued_at uint32 | expires_at uint32 | len(campaign) uint8 | campaign | customer id (UTF-8)

Version and key id are authenticated as associated data. Version 1 is AES-256-GCM-SIV rather than plain
GCM: tokens use random nonces and a campaign can mint millions of them, and a repeated nonce under GCM
reveals the authentication key (every link could then be forged), while under GCM-SIV it only reveals that
two tokens are equal. Same size, about the same speed.

Each key's AEAD key and customer-reference key are derived once with HKDF-SHA256 from its secret
(see ``keys``), so a token costs about 3 us: a million links in a few seconds. Verification fails closed: any problem at
all raises :class:`~comms.errors.LinkError` whose ``reason`` is for logs only; the customer sees a neutral
page, whatever failed. Only the canonical base64url spelling of a token is accepted, so a revoked token
cannot come back under another spelling of the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Settings
from ..errors import InputError, LinkError
from .keys import LinkKeys

if TYPE_CHECKING:
    from ..store import Store

VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_CAMPAIGN_BYTES = 64
MAX_CUSTOMER_BYTES = 64
MAX_TOKEN_CHARS = 400
_TIMES = struct.Struct(">IIB")  # issued_at, expires_at, len(campaign)
_MIN_RAW = 2 + NONCE_BYTES + _TIMES.size + 1 + TAG_BYTES  # at least one byte of customer id
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_SALT = b"comms.payment-link"
_MAX_TS = 2**32 - 1


@dataclass(frozen=True)
class LinkClaims:
    """What a valid token says. Times are UTC, to the second."""

    campaign: str
    customer_id: str
    issued_at: datetime
    expires_at: datetime
    key_id: str


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=_SALT, info=purpose).derive(secret)


def _unix(now: datetime | float | int | None) -> int:
    if now is None:
        return int(datetime.now(timezone.utc).timestamp())
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (a naive datetime is ambiguous)")
        return math.floor(now.timestamp())
    return math.floor(now)


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def extract_token(text: str) -> str:
    """The token inside a pasted link (``https://host/p/<token>?utm=...``) or the text itself."""
    text = text.strip()
    if "/p/" in text:
        text = text.rsplit("/p/", 1)[1]
    return re.split(r"[?#/]", text, maxsplit=1)[0]


class LinkSigner:
    """Signs and verifies payment-link tokens with a set of keys; build one per process and reuse it."""

    def __init__(self, keys: LinkKeys, *, base_url: str = "https://localhost:8000",
                 default_ttl: timedelta = timedelta(days=60)):
        self.keys = keys
        self.base_url = base_url.rstrip("/")
        self.default_ttl = default_ttl
        self._aead = {k.id: AESGCMSIV(_derive(k.secret, b"aead v1")) for k in keys}
        self._ref_keys = {k.id: _derive(k.secret, b"customer-ref v1") for k in keys}
        self._signing_id = keys.signing.id
        self._header = bytes((VERSION, self._signing_id))

    @classmethod
    def from_settings(cls, settings: Settings) -> "LinkSigner":
        """Keys from COMMS_LINK_KEYS or the key file, TTL from link_ttl_days, URLs on base_url."""
        return cls(LinkKeys.from_settings(settings), base_url=settings.base_url,
                   default_ttl=timedelta(days=settings.link_ttl_days))

    # -- signing ---------------------------------------------------------------------------------------

    def sign(self, campaign: str, customer_id: str, ttl: timedelta | None = None,
             now: datetime | float | None = None) -> str:
        """A token for one customer in one campaign, valid from ``now`` for ``ttl`` (default link_ttl_days)."""
        issued = _unix(now)
        expires = issued + self._ttl_seconds(ttl)
        if expires > _MAX_TS:
            raise InputError(f"link expiry {_utc(min(expires, 2**40))} is beyond 2106")
        return self._seal(self._prefix(campaign, issued, expires), _customer_bytes(customer_id))

    def sign_many(self, campaign: str, customer_ids: Iterable[str], ttl: timedelta | None = None,
                  now: datetime | float | None = None) -> list[str]:
        """Tokens for many customers of one campaign, sharing one issue time (the campaign's batch path)."""
        issued = _unix(now)
        expires = issued + self._ttl_seconds(ttl)
        if expires > _MAX_TS:
            raise InputError("link expiry is beyond 2106")
        prefix = self._prefix(campaign, issued, expires)
        return [self._seal(prefix, _customer_bytes(c)) for c in customer_ids]

    def url(self, token: str) -> str:
        """The customer-facing link that carries ``token``."""
        return f"{self.base_url}/p/{token}"

    def _ttl_seconds(self, ttl: timedelta | None) -> int:
        seconds = math.ceil((self.default_ttl if ttl is None else ttl).total_seconds())
        if seconds <= 0:
            raise InputError(f"link lifetime must be positive, got {ttl}")
        return seconds

    @staticmethod
    def _prefix(campaign: str, issued: int, expires: int) -> bytes:
        if not isinstance(campaign, str) or not campaign:
            raise InputError("a payment link needs a campaign name")
        cb = campaign.encode("utf-8")
        if len(cb) > MAX_CAMPAIGN_BYTES:
            raise InputError(f"campaign name is {len(cb)} bytes, at most {MAX_CAMPAIGN_BYTES} fit in a link")
        return _TIMES.pack(issued, expires, len(cb)) + cb

    def _seal(self, prefix: bytes, customer: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self._signing_id].encrypt(nonce, prefix + customer, self._header)
        return base64.urlsafe_b64encode(self._header + nonce + sealed).rstrip(b"=").decode("ascii")

    # -- verifying -------------------------------------------------------------------------------------

    def verify(self, token: str, now: datetime | float | None = None, *, store: "Store | None" = None
               ) -> LinkClaims:
        """The claims of a valid, unexpired token (and, given a store, not revoked); else LinkError."""
        claims = self.inspect(token)
        if _unix(now) >= int(claims.expires_at.timestamp()):
            raise LinkError(f"expired at {claims.expires_at.isoformat()}")
        if store is not None:
            from .revocations import is_revoked
            if is_revoked(store, self, claims, token):
                raise LinkError("revoked")
        return claims

    def inspect(self, token: str) -> LinkClaims:
        """Authenticate and decrypt without checking expiry or revocation.

        For operators (revoking, explaining a link); never use it to decide whether to serve a page.
        """
        try:
            return self._open(token)
        except LinkError:
            raise
        except Exception as exc:  # fail closed on anything unforeseen
            raise LinkError(f"undecodable ({type(exc).__name__})") from None

    def _open(self, token: str) -> LinkClaims:
        if not isinstance(token, str) or not token:
            raise LinkError("empty")
        if len(token) > MAX_TOKEN_CHARS:
            raise LinkError(f"too long ({len(token)} chars)")
        if not _B64URL.fullmatch(token):
            raise LinkError("not base64url")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise LinkError("not base64url") from None
        if len(raw) < _MIN_RAW:
            raise LinkError(f"too short ({len(raw)} bytes)")
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            raise LinkError("non-canonical base64url")
        if raw[0] != VERSION:
            raise LinkError(f"unknown version {raw[0]}")
        aead = self._aead.get(raw[1])
        if aead is None:
            raise LinkError(f"unknown key k{raw[1]}")
        try:
            plain = aead.decrypt(raw[2:2 + NONCE_BYTES], raw[2 + NONCE_BYTES:], raw[:2])
        except InvalidTag:
            raise LinkError("authentication failed (tampered or forged)") from None
        issued, expires, n = _TIMES.unpack_from(plain)
        campaign = plain[_TIMES.size:_TIMES.size + n]
        customer = plain[_TIMES.size + n:]
        if len(campaign) != n or not customer:
            raise LinkError("malformed payload")
        return LinkClaims(campaign.decode("utf-8"), customer.decode("utf-8"), _utc(issued), _utc(expires),
                          f"k{raw[1]}")

    # -- references for revocation ---------------------------------------------------------------------

    def customer_ref(self, customer_id: str, key_id: str | None = None) -> str:
        """HMAC-SHA256 (hex) of the customer id under a key derived from one link secret (default: signing).

        What the revocation table stores instead of the id: it finds a customer's revocations without
        the table revealing who they are, and cannot be computed back without the secret.
        """
        kid = self._signing_id if key_id is None else int(key_id.removeprefix("k"))
        return hmac.new(self._ref_keys[kid], _customer_bytes(customer_id), hashlib.sha256).hexdigest()

    def customer_refs(self, customer_id: str) -> list[str]:
        """The customer's reference under every configured key (revocations survive rotation)."""
        cb = _customer_bytes(customer_id)
        return [hmac.new(k, cb, hashlib.sha256).hexdigest() for k in self._ref_keys.values()]


def _customer_bytes(customer_id: str) -> bytes:
    if not isinstance(customer_id, str) or not customer_id:
        raise InputError("a payment link needs a customer id")
    cb = customer_id.encode("utf-8")
    if len(cb) > MAX_CUSTOMER_BYTES:
        raise InputError(f"customer id is {len(cb)} bytes, at most {MAX_CUSTOMER_BYTES} fit in a link")
    return cb
