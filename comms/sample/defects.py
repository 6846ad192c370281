"""Deliberately bad rows and adversarial-but-valid names in the synthetic portfolio.

Each bad row carries exactly one defect, so that ingest's reject reasons can be checked one to one.
Defects go to customers with a single invoice: a customer-level field (id, e-mail, currency, locale, zone,
name) then stays identical on all of the customer's rows, so the row is wrong for one reason and does not
also disagree with its siblings; and since ingest rejects a customer whole when any of its rows is bad,
the number of rows it rejects equals the number of bad rows here. Only when a large ``bad_share`` uses
up those customers do invoice defects (amount, dates) spill onto customers with several invoices.

Adversarial names (markup, quotes, formula triggers, template syntax) are *valid* rows: ingest must accept
them and every channel must escape them. They are never also given a defect.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CUSTOMER_DEFECTS = ("missing_customer_id", "bad_email", "unknown_currency", "unknown_locale",
                    "unknown_timezone", "control_char_in_name", "name_too_long")
INVOICE_DEFECTS = ("negative_amount", "non_numeric_amount", "impossible_date", "unparseable_date")
DEFECTS = CUSTOMER_DEFECTS + INVOICE_DEFECTS

# (name, given_name): each must be accepted as is and come out escaped in HTML, CSV, PDF and video.
ADVERSARIAL_NAMES = (
    ("<script>alert(1)</script> O'Brien & Sons", None),
    ('=HYPERLINK("http://x")', None),
    ("+SUM(A1:A9) Holdings", None),
    ("-2+3 Trading", None),
    ("@Risk Partners", None),
    ("Robert'); DROP TABLE customers;--", "Robert"),
    ("{{ customer.balance }} {% raw %}Ltd", None),
    ('Zoë "Zed" D\'Arcy, Jr.', "Zoë"),
    ("Émile <b>Zola</b> & Fils", "<b>Émile</b>"),
    ("Ana María Núñez-O'Connor ${jndi:ldap://x}", "Ana María"),
)
ADVERSARIAL_SHARE = 0.0005   # about 1 customer in 2,000, and each name at least once when there is room

_BAD_EMAILS = ("{local}{domain}", "{local}@@{domain}", "{local} x@{domain}")
_CONTROL_CHARS = ("\x07", "\x1b", "\x0b", "\x7f")
_NON_NUMERIC = ("abc", "12.3.4", "twelve", "1O0.00")
_IMPOSSIBLE_DATES = ("2024-02-30", "2023-02-29", "2023-04-31", "2023-13-01")
_UNPARSEABLE_DATES = ("next tuesday", "31/31/31", "not a date", "2023-1-")


def adversarial(cols: dict[str, pa.Array], owner: np.ndarray, customer_locale: pa.Array,
                rng: np.random.Generator) -> np.ndarray:
    """Rename a few customers adversarially (all their rows); return the row mask of those customers.

    They are picked among en-US customers when there are any, so the script checks on the other locales
    stay meaningful; every name appears at least once when there are enough customers.
    """
    n = int(owner[-1]) + 1 if len(owner) else 0
    pool = np.flatnonzero(pc.equal(customer_locale, "en-US").to_numpy(zero_copy_only=False))
    if len(pool) == 0:
        pool = np.arange(n)
    m = min(len(pool), max(min(len(ADVERSARIAL_NAMES), n // 20), round(n * ADVERSARIAL_SHARE)))
    chosen = np.sort(rng.choice(pool, size=m, replace=False)) if m else np.array([], dtype=np.int64)
    which = np.full(n, -1)
    which[chosen] = np.arange(m) % len(ADVERSARIAL_NAMES)
    row_which = which[owner]
    mask = row_which >= 0
    if mask.any():
        picks = row_which[mask]
        names = pa.array([ADVERSARIAL_NAMES[i][0] for i in picks], pa.string())
        givens = pa.array([ADVERSARIAL_NAMES[i][1] for i in picks], pa.string())
        cols["name"] = pc.replace_with_mask(cols["name"], pa.array(mask), names)
        cols["given_name"] = pc.replace_with_mask(cols["given_name"], pa.array(mask), givens)
    return mask


def _replace(cols: dict[str, pa.Array], column: str, rows: np.ndarray, values: list | pa.Array) -> None:
    """Put ``values`` (in ascending row order) into ``column`` at ``rows``."""
    mask = np.zeros(len(cols[column]), dtype=bool)
    mask[rows] = True
    cols[column] = pc.replace_with_mask(cols[column], pa.array(mask), pa.array(values, pa.string()))


def _choose(options: tuple[str, ...], k: int, rng: np.random.Generator) -> list[str]:
    return [options[i] for i in rng.integers(0, len(options), k)]


def break_rows(cols: dict[str, pa.Array], owner: np.ndarray, invoice_count: np.ndarray, protected: np.ndarray,
               share: float, rng: np.random.Generator) -> dict[str, int]:
    """Give about ``share`` of the rows one defect each (in place); return the count per defect."""
    rows = len(owner)
    want = int(round(share * rows))
    counts = dict.fromkeys(DEFECTS, 0)
    if want == 0:
        return counts
    kinds = rng.integers(0, len(DEFECTS), want)
    single = rng.permutation(np.flatnonzero((invoice_count[owner] == 1) & ~protected))
    multi = rng.permutation(np.flatnonzero((invoice_count[owner] > 1) & ~protected))
    is_cust = kinds < len(CUSTOMER_DEFECTS)
    cust_rows = single[:int(is_cust.sum())]
    spare = single[len(cust_rows):]
    n_inv = want - int(is_cust.sum())
    inv_rows = np.concatenate([spare[:n_inv], multi[:max(0, n_inv - len(spare))]])
    cust_kinds = kinds[is_cust][:len(cust_rows)]
    inv_kinds = kinds[~is_cust][:len(inv_rows)]

    for kind_index, name in enumerate(DEFECTS):
        if kind_index < len(CUSTOMER_DEFECTS):
            at = np.sort(cust_rows[cust_kinds == kind_index])
        else:
            at = np.sort(inv_rows[inv_kinds == kind_index])
        counts[name] = k = len(at)
        if not k:
            continue
        take = pa.array(at)
        if name == "missing_customer_id":
            _replace(cols, "customer_id", at, pa.nulls(k, pa.string()))
        elif name == "bad_email":
            emails = cols["email"].take(take).to_pylist()
            values = []
            for email, form in zip(emails, _choose(_BAD_EMAILS, k, rng)):
                local, _, domain = (email or "no-email@example.com").partition("@")
                values.append(form.format(local=local, domain=domain))
            _replace(cols, "email", at, values)
        elif name == "unknown_currency":
            _replace(cols, "currency", at, ["XYZ"] * k)
        elif name == "unknown_locale":
            _replace(cols, "locale", at, ["xx-XX"] * k)
        elif name == "unknown_timezone":
            _replace(cols, "timezone", at, ["Mars/Olympus_Mons"] * k)
        elif name == "control_char_in_name":
            names = cols["name"].take(take).to_pylist()
            _replace(cols, "name", at, [nm[: len(nm) // 2] + c + nm[len(nm) // 2:]
                                        for nm, c in zip(names, _choose(_CONTROL_CHARS, k, rng))])
        elif name == "name_too_long":
            names = cols["name"].take(take).to_pylist()
            _replace(cols, "name", at, [" ".join([nm] * (1 + 240 // (len(nm) + 1))) for nm in names])
        elif name == "negative_amount":
            for column in ("amount", "open_amount"):
                _replace(cols, column, at, pc.binary_join_element_wise("-", cols[column].take(take), ""))
        elif name == "non_numeric_amount":
            _replace(cols, "amount", at, _choose(_NON_NUMERIC, k, rng))
        elif name == "impossible_date":
            _replace(cols, "due_date", at, _choose(_IMPOSSIBLE_DATES, k, rng))
        elif name == "unparseable_date":
            on_issue = rng.random(k) < 0.5
            for column, where in (("issue_date", on_issue), ("due_date", ~on_issue)):
                if where.any():
                    _replace(cols, column, at[where], _choose(_UNPARSEABLE_DATES, int(where.sum()), rng))
    return counts
