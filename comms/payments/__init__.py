"""Payments: what a customer is offered and how they reach it.

This package owns the payment link (``links``: the signed, encrypted, expiring token every channel carries;
``keys``: where its secrets come from and how they rotate; ``revocations``: revoking one link or all links
of a customer). Payment offers and EPC/SEPA QR codes live in their own modules here.

Typical use::

    signer = LinkSigner.from_settings(settings)          # once per process
    url = signer.url(signer.sign("spring-2026", customer_id))
    claims = verify_link(store, signer, token)           # on every page view; LinkError -> neutral page
"""

from .keys import LinkKey, LinkKeys, rotate_key_file
from .links import LinkClaims, LinkSigner, extract_token
from .revocations import is_revoked, revoke_customer, revoke_token, token_digest, verify_link

__all__ = [
    "LinkClaims", "LinkKey", "LinkKeys", "LinkSigner", "extract_token", "is_revoked", "revoke_customer",
    "revoke_token", "rotate_key_file", "token_digest", "verify_link",
]
