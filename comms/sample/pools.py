"""Per-locale value pools for the synthetic portfolio: the only place Faker is called.

Faker is slow per call (tens of microseconds) and a million customers need tens of millions of values, so
each locale's names, streets, places and companies are drawn once into small pools (about a thousand
values each) and the generator then samples indices into them with numpy. Faker's own lists are weighted
by frequency, so a pool drawn from them keeps common names common. Pools depend only on the locale and
the seed, never on how many customers are asked for, and are cached per process.

What Faker gets wrong for our purpose is fixed here: Italian places come from its ordered postcode table
(its ``city()`` depends on the process's hash seed, which would break determinism); Russian places come from a table of real cities with
their regions, time zones and postcode prefixes (so the zone agrees with the city); US places are drawn
by state population and carry the state's zone; values that leak Latin letters into a Hebrew, Chinese or
Russian pool (``ОПХ (Heineken)``) are dropped so every name is in its own script.
"""

from __future__ import annotations

import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

POOL = 1000  # values per pool: enough variety (10^6 first x last pairs), cheap to build (< 1 s per locale)


@dataclass(frozen=True)
class LocaleSpec:
    code: str            # BCP 47, as written in the file
    faker: str           # Faker's locale name
    country: str
    currency: str
    usd_rate: float      # units of the currency per US dollar: a RUB invoice is ~90x a USD one
    zone: str | None     # the country's single zone; None when places carry their own
    phone: str           # template for _fill: '#' any digit, '%' 2-9
    name_style: str      # "western" (first last), "russian" (last first patronymic), "chinese" (last+first)
    script: str | None   # the script names must be in; None means Latin


LOCALES: dict[str, LocaleSpec] = {
    "en-US": LocaleSpec("en-US", "en_US", "US", "USD", 1.0, None, "+1 %##-555-01##", "western", None),
    "it-IT": LocaleSpec("it-IT", "it_IT", "IT", "EUR", 0.92, "Europe/Rome", "+39 3## ### ####", "western", None),
    "pl-PL": LocaleSpec("pl-PL", "pl_PL", "PL", "PLN", 4.0, "Europe/Warsaw", "+48 %## ### ###", "western", None),
    "ru-RU": LocaleSpec("ru-RU", "ru_RU", "RU", "RUB", 90.0, None, "+7 9## ###-##-##", "russian", "CYRILLIC"),
    "he-IL": LocaleSpec("he-IL", "he_IL", "IL", "ILS", 3.7, "Asia/Jerusalem", "+972 5#-###-####", "western",
                        "HEBREW"),
    "zh-CN": LocaleSpec("zh-CN", "zh_CN", "CN", "CNY", 7.2, "Asia/Shanghai", "+86 1%# #### ####", "chinese",
                        "CJK"),
}
# Relative share of customers per locale when all are asked for.
LOCALE_WEIGHTS = {"en-US": 0.30, "it-IT": 0.15, "pl-PL": 0.15, "ru-RU": 0.15, "he-IL": 0.10, "zh-CN": 0.15}

# US states: zone (one of the seven the product must handle) and population in millions (2020, rounded),
# so that New York is as common as it should be and Wyoming is rare.
US_STATES: dict[str, tuple[str, float]] = {
    "AL": ("America/Chicago", 5.0), "AK": ("America/Anchorage", 0.73), "AZ": ("America/Phoenix", 7.2),
    "AR": ("America/Chicago", 3.0), "CA": ("America/Los_Angeles", 39.5), "CO": ("America/Denver", 5.8),
    "CT": ("America/New_York", 3.6), "DE": ("America/New_York", 1.0), "DC": ("America/New_York", 0.69),
    "FL": ("America/New_York", 21.5), "GA": ("America/New_York", 10.7), "HI": ("Pacific/Honolulu", 1.46),
    "ID": ("America/Denver", 1.8), "IL": ("America/Chicago", 12.8), "IN": ("America/New_York", 6.8),
    "IA": ("America/Chicago", 3.2), "KS": ("America/Chicago", 2.9), "KY": ("America/New_York", 4.5),
    "LA": ("America/Chicago", 4.7), "ME": ("America/New_York", 1.36), "MD": ("America/New_York", 6.2),
    "MA": ("America/New_York", 7.0), "MI": ("America/New_York", 10.1), "MN": ("America/Chicago", 5.7),
    "MS": ("America/Chicago", 3.0), "MO": ("America/Chicago", 6.2), "MT": ("America/Denver", 1.1),
    "NE": ("America/Chicago", 1.96), "NV": ("America/Los_Angeles", 3.1), "NH": ("America/New_York", 1.38),
    "NJ": ("America/New_York", 9.3), "NM": ("America/Denver", 2.1), "NY": ("America/New_York", 20.2),
    "NC": ("America/New_York", 10.4), "ND": ("America/Chicago", 0.78), "OH": ("America/New_York", 11.8),
    "OK": ("America/Chicago", 4.0), "OR": ("America/Los_Angeles", 4.2), "PA": ("America/New_York", 13.0),
    "RI": ("America/New_York", 1.1), "SC": ("America/New_York", 5.1), "SD": ("America/Chicago", 0.89),
    "TN": ("America/Chicago", 6.9), "TX": ("America/Chicago", 29.1), "UT": ("America/Denver", 3.3),
    "VT": ("America/New_York", 0.64), "VA": ("America/New_York", 8.6), "WA": ("America/Los_Angeles", 7.7),
    "WV": ("America/New_York", 1.8), "WI": ("America/Chicago", 5.9), "WY": ("America/Denver", 0.58),
}

# Russian cities: region, zone, postcode prefix, population in millions. Eleven time zones in one country
# is exactly what a send window in the customer's local time has to get right.
RU_CITIES: tuple[tuple[str, str, str, str, float], ...] = (
    ("Москва", "г. Москва", "Europe/Moscow", "12", 12.6),
    ("Санкт-Петербург", "г. Санкт-Петербург", "Europe/Moscow", "19", 5.4),
    ("Новосибирск", "Новосибирская обл.", "Asia/Novosibirsk", "630", 1.6),
    ("Екатеринбург", "Свердловская обл.", "Asia/Yekaterinburg", "620", 1.5),
    ("Казань", "Республика Татарстан", "Europe/Moscow", "420", 1.3),
    ("Нижний Новгород", "Нижегородская обл.", "Europe/Moscow", "603", 1.25),
    ("Челябинск", "Челябинская обл.", "Asia/Yekaterinburg", "454", 1.2),
    ("Самара", "Самарская обл.", "Europe/Samara", "443", 1.15),
    ("Омск", "Омская обл.", "Asia/Omsk", "644", 1.15),
    ("Ростов-на-Дону", "Ростовская обл.", "Europe/Moscow", "344", 1.14),
    ("Уфа", "Республика Башкортостан", "Asia/Yekaterinburg", "450", 1.13),
    ("Красноярск", "Красноярский край", "Asia/Krasnoyarsk", "660", 1.1),
    ("Воронеж", "Воронежская обл.", "Europe/Moscow", "394", 1.05),
    ("Пермь", "Пермский край", "Asia/Yekaterinburg", "614", 1.05),
    ("Волгоград", "Волгоградская обл.", "Europe/Volgograd", "400", 1.0),
    ("Краснодар", "Краснодарский край", "Europe/Moscow", "350", 0.95),
    ("Иркутск", "Иркутская обл.", "Asia/Irkutsk", "664", 0.6),
    ("Хабаровск", "Хабаровский край", "Asia/Vladivostok", "680", 0.6),
    ("Владивосток", "Приморский край", "Asia/Vladivostok", "690", 0.6),
    ("Калининград", "Калининградская обл.", "Europe/Kaliningrad", "236", 0.5),
    ("Якутск", "Республика Саха (Якутия)", "Asia/Yakutsk", "677", 0.35),
)

_CYRILLIC_TO_LATIN = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
     "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"]))
_SPECIAL_LATIN = {"ł": "l", "Ł": "l", "ß": "ss", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe"}


def ascii_slug(text: str) -> str | None:
    """Lower-case ASCII letters and digits for an e-mail local part, or None when nothing is left (Han,
    Hebrew): those customers get an id-based local part instead of a meaningless one."""
    out = []
    for ch in unicodedata.normalize("NFKD", text.lower()):
        if unicodedata.combining(ch):
            continue
        ch = _SPECIAL_LATIN.get(ch, _CYRILLIC_TO_LATIN.get(ch, ch))
        out.append(ch if ch.isascii() and ch.isalnum() else "")
    slug = "".join(out)[:24]
    return slug or None


def in_script(text: str, script: str | None) -> bool:
    """True when every letter of ``text`` belongs to ``script`` (Unicode character names start with it)."""
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            if script is None:
                if "LATIN" not in name:
                    return False
            elif not name.startswith(script):
                return False
    return True


@dataclass(frozen=True)
class Pools:
    """Arrow arrays to ``take`` from; parallel arrays share an index (a place is city+region+postcode+zone)."""
    first_m: pa.Array
    first_f: pa.Array
    last_m: pa.Array
    last_f: pa.Array
    middle_m: pa.Array      # patronymics (Russian); empty strings elsewhere
    middle_f: pa.Array
    slug_first_m: pa.Array  # ASCII forms for e-mail local parts, null where there is none
    slug_first_f: pa.Array
    slug_last_m: pa.Array
    slug_last_f: pa.Array
    company: pa.Array
    slug_company: pa.Array
    street: pa.Array
    city: pa.Array
    region: pa.Array
    postcode: pa.Array
    zone: pa.Array


def _draw(fn, n: int, script: str | None, *, check: bool = True) -> list[str]:
    """n values from a Faker method, skipping ones not in the locale's script (bounded retries)."""
    out: list[str] = []
    for _ in range(n * 20):
        value = str(fn()).strip()
        if value and (not check or in_script(value, script)):
            out.append(value)
            if len(out) == n:
                return out
    raise RuntimeError(f"Faker {fn.__name__} gives too few values in script {script}")


def _slugs(values: list[str]) -> pa.Array:
    return pa.array([ascii_slug(v) for v in values], pa.string())


def _places(spec: LocaleSpec, fake, rng: np.random.Generator, n: int) -> tuple[list[str], ...]:
    if spec.code == "en-US":
        states = list(US_STATES)
        pop = np.array([US_STATES[s][1] for s in states])
        picks = rng.choice(len(states), size=n, p=pop / pop.sum())
        st = [states[i] for i in picks]
        return ([fake.city() for _ in st], st, [fake.postcode_in_state(s) for s in st],
                [US_STATES[s][0] for s in st])
    if spec.code == "ru-RU":
        pop = np.array([c[4] for c in RU_CITIES])
        picks = rng.choice(len(RU_CITIES), size=n, p=pop / pop.sum())
        rows = [RU_CITIES[i] for i in picks]
        codes = [p + "".join(map(str, rng.integers(0, 10, 6 - len(p)))) for _, _, _, p, _ in rows]
        return [r[0] for r in rows], [r[1] for r in rows], codes, [r[2] for r in rows]
    if spec.code == "it-IT":
        # Faker's it_IT city() draws from a set (order changes with PYTHONHASHSEED); its postcode table
        # is ordered and gives a real postcode, town and province abbreviation that belong together.
        from faker.providers.address.it_IT import Provider as ItalianAddresses

        caps = list(ItalianAddresses.cap_city_province.items())
        picks = [caps[i] for i in rng.integers(0, len(caps), n)]
        towns = [towns[int(rng.integers(0, len(towns)))] for _, towns in picks]
        return [t[0] for t in towns], [t[1] for t in towns], [cap for cap, _ in picks], [spec.zone] * n
    city = _draw(fake.city, n, spec.script)
    if spec.code == "he-IL":       # Israeli addresses carry no region line
        region: list[str | None] = [None] * n
    else:
        region = _draw(fake.administrative_unit, n, spec.script)
    postcode = [fake.postcode() for _ in range(n)]
    return city, region, postcode, [spec.zone] * n


def _companies(spec: LocaleSpec, fake, last: list[str], rng: np.random.Generator, n: int) -> list[str]:
    if spec.code == "he-IL":   # Faker's he_IL companies are "<name> Inc": build Hebrew ones
        suffix = ['בע"מ', "ושות'", 'בע"מ', "אחזקות"]
        return [f"{last[i]} {suffix[j]}" for i, j in zip(rng.integers(0, len(last), n), rng.integers(0, 4, n))]
    return _draw(fake.company, n, spec.script)


@lru_cache(maxsize=32)
def pools_for(code: str, seed: int) -> Pools:
    """Build (once per process) the pools of one locale for one seed."""
    from faker import Faker  # imported here: a second or so of import time only when sample data is made

    spec = LOCALES[code]
    fake = Faker(spec.faker)
    local_seed = (seed * 1_000_003 + zlib.crc32(code.encode())) % 2**32
    fake.seed_instance(local_seed)
    rng = np.random.default_rng(local_seed)
    s = spec.script
    has_gender_last = hasattr(fake, "last_name_male")
    first_m = _draw(fake.first_name_male, POOL, s)
    first_f = _draw(fake.first_name_female, POOL, s)
    last_m = _draw(fake.last_name_male if has_gender_last else fake.last_name, POOL, s)
    last_f = _draw(fake.last_name_female if has_gender_last else fake.last_name, POOL, s)
    if spec.name_style == "russian":
        middle_m, middle_f = _draw(fake.middle_name_male, POOL, s), _draw(fake.middle_name_female, POOL, s)
    else:
        middle_m = middle_f = [""] * POOL
    company = _companies(spec, fake, last_m, rng, POOL)
    street = _draw(fake.street_name, POOL, s)
    city, region, postcode, zone = _places(spec, fake, rng, POOL)
    arr = lambda v: pa.array(v, pa.string())  # noqa: E731
    return Pools(
        first_m=arr(first_m), first_f=arr(first_f), last_m=arr(last_m), last_f=arr(last_f),
        middle_m=arr(middle_m), middle_f=arr(middle_f),
        slug_first_m=_slugs(first_m), slug_first_f=_slugs(first_f),
        slug_last_m=_slugs(last_m), slug_last_f=_slugs(last_f),
        company=arr(company), slug_company=_slugs(company), street=arr(street),
        city=arr(city), region=arr(region), postcode=arr(postcode), zone=arr(zone),
    )

