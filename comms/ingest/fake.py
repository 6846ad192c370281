"""Clearly fake, reproducible contact data for portfolios that hold none (the mapping's ``fill:``).

Public credit data sets have no names or addresses; a demo still needs someone to write to. Each value is
picked from small per-locale pools drawn once with Faker, at an index computed from a hash of
``(seed, customer id)``: the same customer gets the same fake person whatever the row order, and the
whole column is built with numpy and Arrow, never one Python call per row. What makes it clearly fake:
e-mail addresses only at example.com/.net/.org (reserved, RFC 2606), phone numbers in the 555-0100..0199
range reserved for fiction, and the import lists every filled field in the report and the snapshot.
Names are plausible in the customer's locale and script (Faker's own lists for that locale).

Example: fill_values("email", ids, locales, seed=7)
"""

from __future__ import annotations

import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .text import _offsets_data, codes_of, combine
from .validate import normalize_locale

POOL = 500
GENERATORS = {  # generator -> the canonical fields it fills
    "fake_name": ("name",),
    "fake_given_name": ("given_name",),
    "fake_email": ("email",),
    "fake_phone": ("phone",),
    "fake_address": ("address_line1", "postal_code", "city"),
}
EAST_ASIAN = ("zh", "ja", "ko")
TLDS = pa.array(["com", "net", "org"])
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class Pools:
    first: pa.Array
    last: pa.Array
    first_slug: pa.Array
    last_slug: pa.Array
    street: pa.Array
    postcode: pa.Array
    city: pa.Array
    family_first: bool


_SPECIAL = str.maketrans({"ß": "ss", "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "đ": "d",
                          "œ": "oe", "þ": "th"})


def _slug(text: str) -> str:
    text = text.translate(_SPECIAL)
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(ch for ch in ascii_ if ch.isalnum())


def faker_locale(locale: str | None) -> str:
    from faker.config import AVAILABLE_LOCALES
    code = (normalize_locale(locale) if locale else None) or "en-US"
    parts = code.split("-")
    candidates = [f"{parts[0]}_{parts[-1]}", parts[0]] + sorted(l for l in AVAILABLE_LOCALES if l.startswith(parts[0] + "_"))
    return next((c for c in candidates if c in AVAILABLE_LOCALES), "en_US")


@lru_cache(maxsize=64)
def pools_for(fake_locale: str, seed: int) -> Pools:
    from faker import Faker
    fake = Faker(fake_locale)
    fake.seed_instance((seed * 1_000_003 + zlib.crc32(fake_locale.encode())) % 2**32)
    first = [fake.first_name() for _ in range(POOL)]
    last = [fake.last_name() for _ in range(POOL)]
    street = [fake.street_address().replace("\n", ", ") for _ in range(POOL)]
    postcode = [fake.postcode() for _ in range(POOL)]
    city = [fake.city() for _ in range(POOL)]
    return Pools(pa.array(first), pa.array(last), pa.array([_slug(x) for x in first]),
                 pa.array([_slug(x) for x in last]), pa.array(street), pa.array(postcode), pa.array(city),
                 fake_locale.split("_")[0] in EAST_ASIAN)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads every input bit over the output."""
    h = h.copy()
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def stable_hash(ids: pa.Array, seed: int) -> np.ndarray:
    """A 64-bit hash of each string that depends only on the string and the seed (not on row order,
    process or platform)."""
    ids = combine(ids)
    offsets, data = _offsets_data(ids)
    offsets = offsets.astype(np.int64)
    start = offsets[0]
    body = data[start:offsets[-1]].astype(np.uint64)
    offs = offsets - start
    lengths = np.diff(offs)
    n = len(ids)
    h = np.zeros(n, dtype=np.uint64)
    if body.size:
        longest = int(lengths.max())
        with np.errstate(over="ignore"):
            powers = np.cumprod(np.full(longest, np.uint64(1099511628211), dtype=np.uint64), dtype=np.uint64)
            row = np.repeat(np.arange(n), lengths)
            pos = np.arange(body.size, dtype=np.int64) - offs[:-1][row]
            contrib = (body + np.uint64(1)) * powers[pos]
            nonempty = np.flatnonzero(lengths > 0)
            h[nonempty] = np.add.reduceat(contrib, offs[:-1][nonempty])
    with np.errstate(over="ignore"):
        h ^= np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        h += lengths.astype(np.uint64)
        return _mix(h)


def _pick(h: np.ndarray, salt: int, size: int) -> pa.Array:
    with np.errstate(over="ignore"):
        return pa.array((_mix(h + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)) % np.uint64(size)).astype(np.int64))


def _values(generator: str, h: np.ndarray, pools: Pools, ids: pa.Array) -> dict[str, pa.Array]:
    first = pools.first.take(_pick(h, 1, POOL))
    last = pools.last.take(_pick(h, 2, POOL))
    if generator == "fake_name":
        name = pc.binary_join_element_wise(last, first, "") if pools.family_first \
            else pc.binary_join_element_wise(first, last, " ")
        return {"name": name}
    if generator == "fake_given_name":
        return {"given_name": first}
    if generator == "fake_email":
        id_slugs = pc.utf8_slice_codeunits(pc.replace_substring_regex(
            pc.utf8_lower(pc.fill_null(ids, "")), r"[^a-z0-9]+", "-"), 0, 40)
        fs, ls = pools.first_slug.take(_pick(h, 1, POOL)), pools.last_slug.take(_pick(h, 2, POOL))
        number = pc.cast(pa.array((_pick(h, 3, 1000).to_numpy() + 1000)), pa.string())
        number = pc.utf8_slice_codeunits(number, 1, 4)
        person = pc.binary_join_element_wise(fs, ls, number, ".")
        has_latin = pc.and_(pc.greater(pc.utf8_length(fs), 0), pc.greater(pc.utf8_length(ls), 0))
        anonymous = pc.binary_join_element_wise("customer", id_slugs, ".")
        local = pc.if_else(has_latin, person, anonymous)
        domain = pc.binary_join_element_wise("example", TLDS.take(_pick(h, 4, 3)), ".")
        return {"email": pc.binary_join_element_wise(local, domain, "@")}
    if generator == "fake_phone":
        number = pc.cast(pa.array(_pick(h, 5, 100).to_numpy() + 100), pa.string())
        return {"phone": pc.binary_join_element_wise("+1 202-555-01", pc.utf8_slice_codeunits(number, 1, 3), "")}
    if generator == "fake_address":
        return {"address_line1": pools.street.take(_pick(h, 6, POOL)),
                "postal_code": pools.postcode.take(_pick(h, 7, POOL)),
                "city": pools.city.take(_pick(h, 8, POOL))}
    raise AssertionError(generator)


def fake_columns(generator: str, ids: pa.Array, locales: pa.Array | None, seed: int) -> dict[str, pa.Array]:
    """The fields ``generator`` fills, one value per row, in each row's locale (en-US when unknown)."""
    ids = combine(ids)
    n = len(ids)
    h = stable_hash(pc.fill_null(ids, ""), seed)
    if locales is None:
        return _values(generator, h, pools_for(faker_locale(None), seed), ids)
    enc = combine(locales).dictionary_encode()
    codes = codes_of(enc.indices)
    groups: list[tuple[np.ndarray, dict[str, pa.Array]]] = []
    for k, loc in enumerate([None] + enc.dictionary.to_pylist()):
        rows = np.flatnonzero(codes == k - 1)
        if rows.size:
            groups.append((rows, _values(generator, h[rows], pools_for(faker_locale(loc), seed),
                                         ids.take(pa.array(rows)))))
    order = np.concatenate([rows for rows, _ in groups]) if groups else np.zeros(0, np.int64)
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    fields = GENERATORS[generator]
    return {f: pa.concat_arrays([combine(vals[f]) for _, vals in groups]).take(pa.array(back)) if groups
            else pa.nulls(0, pa.string()) for f in fields}
