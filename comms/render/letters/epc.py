"""SEPA credit transfer QR codes (EPC069-12, "EPC QR code", version 002) that banking apps read.

The payload is twelve lines (LF-separated, UTF-8, at most 331 bytes) that a banking app turns into a
pre-filled transfer:

    BCD / 002 / 1 (UTF-8) / SCT / BIC / beneficiary name / IBAN / EUR<amount> / purpose /
    structured reference / unstructured text / note to the payer

Only for customers who owe EUR. The amount is the full balance: pay-in-full is always a valid way to
settle, while a settlement amount is only valid until its deadline and only if the segment offers it, so a
bank transfer made from an old letter never underpays by accident. The customer's reference is an
ISO 11649 creditor reference ("RF" + check digits + the customer id), so the bank statement carries a
reference the creditor can match automatically; ids that cannot form one fall back to unstructured text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ...errors import ConfigError

MAX_BYTES = 331
_ALNUM = re.compile(r"[^A-Za-z0-9]")
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


def _mod97(text: str) -> int:
    """ISO 7064 MOD 97-10 over letters-as-numbers (A=10 ... Z=35), as IBAN and RF references use."""
    digits = "".join(str(int(c, 36)) for c in text)
    return int(digits) % 97


def normalize_iban(iban: str) -> str:
    return re.sub(r"\s+", "", iban or "").upper()


def valid_iban(iban: str) -> bool:
    iban = normalize_iban(iban)
    return bool(_IBAN.match(iban)) and _mod97(iban[4:] + iban[:4]) == 1


def format_iban(iban: str) -> str:
    """'DE89370400440532013000' -> 'DE89 3704 0044 0532 0130 00' (how it is printed for people)."""
    iban = normalize_iban(iban)
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))


def creditor_reference(customer_id: str) -> str | None:
    """ISO 11649 'RF' reference built from the customer id, or None if the id has no usable characters."""
    body = _ALNUM.sub("", customer_id or "").upper()
    if not body or len(body) > 21:
        return None
    check = 98 - _mod97(body + "RF00")
    return f"RF{check:02d}{body}"


def valid_creditor_reference(ref: str) -> bool:
    ref = ref.replace(" ", "").upper()
    return bool(re.match(r"^RF[0-9]{2}[A-Z0-9]{1,21}$", ref)) and _mod97(ref[4:] + ref[:4]) == 1


@dataclass(frozen=True)
class Beneficiary:
    """The creditor as the transfer needs it, checked once when a renderer starts (configuration)."""

    name: str
    iban: str
    bic: str

    @classmethod
    def checked(cls, name: str, iban: str, bic: str) -> "Beneficiary":
        iban = normalize_iban(iban)
        bic = (bic or "").replace(" ", "").upper()
        if not valid_iban(iban):
            raise ConfigError("creditor_iban", f"{iban!r} is not a valid IBAN (check digits or format)")
        if bic and not _BIC.match(bic):
            raise ConfigError("creditor_bic", f"{bic!r} is not a valid BIC (8 or 11 letters and digits)")
        name = " ".join((name or "").split())
        if not name or len(name) > 70:
            raise ConfigError("creditor_name", "must be 1 to 70 characters for SEPA transfers")
        return cls(name=name, iban=iban, bic=bic)


def epc_payload(beneficiary: Beneficiary, amount: Decimal | None, *, reference: str | None = None,
                text: str | None = None, note: str | None = None) -> str:
    """The EPC069-12 version 002 payload; ``amount`` None leaves it for the payer to fill in."""
    if reference and text:
        raise ValueError("an EPC payment carries a structured reference or a text, not both")
    if amount is not None:
        amount = Decimal(amount).quantize(Decimal("0.01"))
        if not Decimal("0.01") <= amount <= Decimal("999999999.99"):
            amount = None
    lines = ["BCD", "002", "1", "SCT", beneficiary.bic, beneficiary.name, beneficiary.iban,
             f"EUR{amount}" if amount is not None else "", "", reference or "", (text or "")[:140],
             (note or "")[:70]]
    while lines[-1] == "":
        lines.pop()
    payload = "\n".join(lines)
    if len(payload.encode("utf-8")) > MAX_BYTES:
        raise ValueError(f"EPC payload longer than {MAX_BYTES} bytes")
    return payload


def parse_epc_payload(payload: str) -> dict[str, str]:
    """The fields of a payload by name (for tests and for checking what a scanned code says)."""
    names = ["service_tag", "version", "charset", "identification", "bic", "name", "iban", "amount",
             "purpose", "reference", "text", "note"]
    values = payload.split("\n")
    return {n: (values[i] if i < len(values) else "") for i, n in enumerate(names)}
