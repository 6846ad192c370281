"""Vectorized generation of one chunk of the synthetic portfolio (customers, then their invoice rows).

Every column is built with numpy draws and Arrow ``take``/string kernels over the pools of
:mod:`comms.sample.pools`; nothing here loops over customers or rows in Python. A latent risk per customer
ties the behaviour together the way real ledgers do: risky customers pay a smaller share of what they were
billed, break more promises, dispute more often and have older open invoices.

Amounts and dates leave here as text (``"1234.50"``, ``"2024-05-31"``) because the defects added later
need to put text that is not a number or not a date into the same columns, as a real export would.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .pools import LOCALES, LocaleSpec, Pools, pools_for

# Open invoices per customer: 1..6, mean about 3.
INVOICE_COUNT_P = np.array([0.22, 0.22, 0.22, 0.14, 0.10, 0.10])
# Days past due of a customer's oldest open invoice: buckets (low, high) and their weight for an average
# customer; the latent risk tilts the weight towards the old buckets. Negative means not yet due.
AGE_BUCKETS = np.array([(-30, 0), (1, 30), (31, 60), (61, 90), (91, 180), (181, 365), (366, 730)])
AGE_WEIGHTS = np.array([0.16, 0.36, 0.17, 0.10, 0.10, 0.07, 0.04])
AGE_TILT = 1.2
PAYMENT_TERMS = np.array([14, 30, 30, 30, 45, 60])
DOMAINS = pa.array(["example.com", "example.net", "example.org"])  # reserved (RFC 2606): never deliverable
LINE2 = {  # (share of customers with a second address line, template); '#' is a digit, '%' is 1-9
    "en-US": (0.2, "Apt. %#"), "it-IT": (0.15, "Scala %, Interno %#"), "pl-PL": (0.0, ""),
    "ru-RU": (0.8, "кв. %#"), "he-IL": (0.5, "דירה %#"), "zh-CN": (0.7, "%栋%0%室"),
}


def fill(template: str, n: int, rng: np.random.Generator) -> pa.Array:
    """n strings shaped like ``template`` ('#' a random digit, '%' a random digit 1-9 (2-9 after '+1 '),
    anything else literal), built as one fixed-width buffer instead of n Python strings."""
    raw = np.frombuffer(template.encode(), dtype=np.uint8)
    width = len(raw)
    buf = np.tile(raw, (n, 1))
    low_pct = 2 if template.startswith("+1 ") else 1   # US area codes and exchanges never start with 0 or 1
    for pos, byte in enumerate(raw):
        if byte == ord("#"):
            buf[:, pos] = 48 + rng.integers(0, 10, n, dtype=np.uint8)
        elif byte == ord("%"):
            buf[:, pos] = 48 + rng.integers(low_pct, 10, n, dtype=np.uint8)
    offsets = (np.arange(n + 1, dtype=np.int32) * width).view(np.uint8)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf.tobytes())])


def join(*parts, sep: str = "") -> pa.Array:
    """Element-wise concatenation (null if any part is null); plain strings broadcast."""
    return pc.binary_join_element_wise(*parts, sep)


def ints(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


def money(cents: np.ndarray) -> pa.Array:
    """Integer cents as text with two decimals and a '.' point: exact, no float formatting."""
    mag = np.abs(cents)
    text = join(ints(mag // 100), ".", pc.utf8_lpad(ints(mag % 100), 2, "0"))
    neg = cents < 0
    return pc.if_else(pa.array(neg), join("-", text), text) if neg.any() else text


def dates(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 as ISO dates."""
    return pc.cast(pa.array(days.astype("datetime64[D]")), pa.string())


def _pick(pool: pa.Array, rng: np.random.Generator, n: int) -> tuple[pa.Array, np.ndarray]:
    idx = rng.integers(0, len(pool), n)
    return pool.take(idx), idx


def _gendered(male: pa.Array, female: pa.Array, is_f: pa.Array, idx: np.ndarray) -> pa.Array:
    return pc.if_else(is_f, female.take(idx), male.take(idx))


def locale_block(spec: LocaleSpec, pools: Pools, n: int, rng: np.random.Generator) -> dict[str, pa.Array]:
    """Customer-level text columns for n customers of one locale."""
    is_f = pa.array(rng.random(n) < 0.5)
    is_company = rng.random(n) < 0.08
    fi, li, mi = (rng.integers(0, len(pools.first_m), n) for _ in range(3))
    first = _gendered(pools.first_m, pools.first_f, is_f, fi)
    last = _gendered(pools.last_m, pools.last_f, is_f, li)
    if spec.name_style == "russian":   # official order; greeted by first name and patronymic
        middle = _gendered(pools.middle_m, pools.middle_f, is_f, mi)
        person, given = join(last, first, middle, sep=" "), join(first, middle, sep=" ")
    elif spec.name_style == "chinese":  # family name first, no space; greeted by the full name
        person = join(last, first)
        given = person
    else:
        person, given = join(first, last, sep=" "), first
    slug_person = join(_gendered(pools.slug_first_m, pools.slug_first_f, is_f, fi),
                       _gendered(pools.slug_last_m, pools.slug_last_f, is_f, li), sep=".")
    ci = rng.integers(0, len(pools.company), n)
    company_mask = pa.array(is_company)
    name = pc.if_else(company_mask, pools.company.take(ci), person)
    given = pc.if_else(company_mask, pa.nulls(n, pa.string()), given)
    slug = pc.if_else(company_mask, pools.slug_company.take(ci), slug_person)

    street, _ = _pick(pools.street, rng, n)
    house = ints(np.minimum(1 + rng.geometric(0.03, n), 999))
    if spec.code == "en-US":
        line1 = join(house, street, sep=" ")
    elif spec.code == "it-IT":
        line1 = join(street, house, sep=", ")
    elif spec.code == "pl-PL":   # flat number after a slash, as Polish addresses write it
        flat = ints(rng.integers(1, 120, n))
        line1 = join("ul. ", street, " ", house, pc.if_else(pa.array(rng.random(n) < 0.6), join("/", flat), ""))
    elif spec.code == "ru-RU":
        line1 = join(street, join("д. ", house), sep=", ")
    elif spec.code == "zh-CN":
        line1 = join(street, house, "号")
    else:
        line1 = join(street, house, sep=" ")
    share, template = LINE2[spec.code]
    line2 = pa.nulls(n, pa.string())
    if share:
        line2 = pc.if_else(pa.array(rng.random(n) < share), fill(template, n, rng), line2)

    pi = rng.integers(0, len(pools.city), n)
    const = lambda v: pa.array(np.full(n, v, dtype=object), pa.string())  # noqa: E731
    return {
        "name": name, "given_name": given, "slug": slug,
        "phone": fill(spec.phone, n, rng),
        "address_line1": line1, "address_line2": line2,
        "postal_code": pools.postcode.take(pi), "city": pools.city.take(pi), "region": pools.region.take(pi),
        "country": const(spec.country), "locale": const(spec.code), "timezone": pools.zone.take(pi),
        "currency": const(spec.currency), "usd_rate": pa.array(np.full(n, spec.usd_rate)),
    }


def _oldest_days_past_due(risk: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(risk)
    tilt = np.exp(AGE_TILT * np.outer(risk - 0.28, np.arange(len(AGE_WEIGHTS))))  # (n, buckets)
    cdf = np.cumsum(AGE_WEIGHTS * tilt, axis=1)
    bucket = (rng.random(n)[:, None] * cdf[:, -1:] > cdf).sum(axis=1)
    low, high = AGE_BUCKETS[bucket, 0], AGE_BUCKETS[bucket, 1]
    return low + (rng.random(n) * (high - low + 1)).astype(np.int64)


def customers(locales: tuple[str, ...], weights: np.ndarray, seed: int, n: int,
              rng: np.random.Generator) -> tuple[pa.Table, np.ndarray]:
    """n customers (text columns from the pools, shuffled across locales) and their latent risk."""
    counts = rng.multinomial(n, weights)
    blocks = [pa.table(locale_block(LOCALES[code], pools_for(code, seed), int(k), rng))
              for code, k in zip(locales, counts) if k]
    table = pa.concat_tables(blocks).take(rng.permutation(n))
    return table, rng.beta(2.0, 5.0, n)


def build_chunk(locales: tuple[str, ...], weights: np.ndarray, seed: int, as_of: date, first_customer: int,
                first_row: int, n: int, rng: np.random.Generator) -> tuple[dict[str, pa.Array], dict]:
    """Columns of one chunk at invoice level, plus the facts the defects step needs.

    ``first_customer`` and ``first_row`` number ids and invoice numbers across chunks.
    """
    cust, risk = customers(locales, weights, seed, n, rng)
    as_of_day = (np.datetime64(as_of, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    number = np.arange(first_customer + 1, first_customer + n + 1)
    customer_id = join("C", pc.utf8_lpad(ints(number), 8, "0"))
    slug = pc.if_else(pc.is_null(cust["slug"]), "customer", cust["slug"])
    email = join(slug, ".", ints(number), "@", DOMAINS.take(rng.integers(0, 3, n)))
    email = pc.if_else(pa.array(rng.random(n) < 0.02), pa.nulls(n, pa.string()), email)  # some have none
    phone = pc.if_else(pa.array(rng.random(n) < 0.05), pa.nulls(n, pa.string()), cust["phone"])

    # Invoices: the oldest is D days past due, the next ones follow a month apart; any that would fall more
    # than a month in the future are instead due within the coming month.
    k = rng.choice(np.arange(1, 7), size=n, p=INVOICE_COUNT_P)
    oldest = _oldest_days_past_due(risk, rng)
    owner = np.repeat(np.arange(n), k)
    rows = len(owner)
    seq = np.arange(rows) - np.repeat(np.cumsum(k) - k, k)   # 0..k-1 within each customer
    dpd = oldest[owner] - 30 * seq
    future = dpd < -30
    dpd[future] = -rng.integers(0, 31, int(future.sum()))
    due = as_of_day - dpd
    terms = PAYMENT_TERMS[rng.integers(0, len(PAYMENT_TERMS), n)]
    issue = due - terms[owner]
    first_issue = np.minimum.reduceat(issue, np.cumsum(k) - k)
    since = first_issue - rng.integers(0, 12 * 365, n)

    usd_rate = cust["usd_rate"].to_numpy()
    is_company = pc.is_null(cust["given_name"]).to_numpy(zero_copy_only=False)
    typical = np.exp(rng.normal(np.log(120.0), 0.8, n)) * np.where(is_company, 6.0, 1.0) * usd_rate
    amount = np.maximum(100, np.round(typical[owner] * np.exp(rng.normal(0.0, 0.35, rows)) * 100)).astype(np.int64)
    partial = rng.random(rows) < 0.15
    open_amount = np.where(partial, np.maximum(1, (amount * rng.uniform(0.05, 0.95, rows)).astype(np.int64)),
                           amount)
    months = rng.integers(3, 37, n) * (rng.random(n) >= 0.05)     # 5% are new: no history at all
    billed = np.round(typical * months * 100).astype(np.int64)
    ratio = rng.beta(0.5 + 10 * (1 - risk), 0.5 + 10 * risk)
    paid = np.floor(billed * ratio).astype(np.int64)
    has_broken = rng.random(n) < 0.04 + 0.3 * risk
    broken = np.where(has_broken, np.minimum(rng.geometric(0.55, n), 4), 0)

    customer_cols = {
        "customer_id": customer_id, "name": cust["name"], "given_name": cust["given_name"], "email": email,
        "phone": phone, "address_line1": cust["address_line1"], "address_line2": cust["address_line2"],
        "postal_code": cust["postal_code"], "city": cust["city"], "region": cust["region"],
        "country": cust["country"], "locale": cust["locale"], "timezone": cust["timezone"],
        "currency": cust["currency"],
        "consent_email": pa.array(rng.random(n) >= 0.04), "consent_sms": pa.array(rng.random(n) < 0.35),
        "consent_letter": pa.array(rng.random(n) >= 0.03),
        "do_not_contact": pa.array(rng.random(n) < 0.01),
        "dispute": pa.array(rng.random(n) < 0.008 + 0.04 * risk),
        "customer_since": dates(since), "billed_history": money(billed), "paid_history": money(paid),
        "broken_promises": pa.array(broken, pa.int64()),
    }
    owner_idx = pa.array(owner)
    cols = {name: col.take(owner_idx) for name, col in customer_cols.items()}
    cols["invoice_number"] = join("INV-", pc.utf8_lpad(ints(np.arange(first_row + 1, first_row + rows + 1)),
                                                       9, "0"))
    cols["issue_date"] = dates(issue)
    cols["due_date"] = dates(due)
    cols["amount"] = money(amount)
    cols["open_amount"] = money(open_amount)
    facts = {"owner": owner, "invoice_count": k, "customer_locale": cust["locale"]}
    return cols, facts
