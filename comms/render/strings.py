"""The words of a treatment, per locale: templates/_base/strings/<lang>.yaml merged with
templates/<treatment>/strings/<lang>.yaml (the treatment wins, key by key).

Words of one channel live in a sub-folder named after it (``strings/email/<lang>.yaml``, ``strings/page/``,
``strings/letter/``, ``strings/video/``) and appear under that name: ``t.email.subject``, ``t.page.pay``.
The common words (``strings/<lang>.yaml``) are at the top: ``t.greeting``, ``t.balance``.

Lookup order for a customer's locale: the exact tag (``he-IL``), then its language (``he``), then English;
a key missing in the customer's language falls back to English, so a half-translated treatment still sends
complete messages (``comms lint`` reports the gaps). Values are Jinja snippets rendered in the sandbox with
the customer's context, so marketing can write "Dear {{ customer.greeting_name }}".
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import SegmentConfigError

BASE = "_base"
FALLBACK = "en"


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SegmentConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SegmentConfigError(f"{path}: must map message keys to text")
    return data


def _candidates(locale: str) -> list[str]:
    tag = locale.replace("_", "-")
    lang = tag.split("-")[0]
    return list(dict.fromkeys([tag, lang, FALLBACK]))


@lru_cache(maxsize=512)
def _layer(templates_dir: Path, folder: str, sub: str, mtime_key: float) -> dict[str, str]:
    return _read(templates_dir / folder / "strings" / f"{sub}.yaml")


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@lru_cache(maxsize=64)
def _namespaces(templates_dir: Path, folder: str) -> tuple[str, ...]:
    root = templates_dir / folder / "strings"
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir())) if root.is_dir() else ()


def _merged(templates_dir: Path, treatment: str, langs: list[str], namespace: str | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for lang in reversed(langs):  # English first, then the language, then the exact tag on top
        for folder in (BASE, treatment):
            sub = f"{namespace}/{lang}" if namespace else lang
            path = templates_dir / folder / "strings" / f"{sub}.yaml"
            merged.update(_layer(templates_dir, folder, sub, _mtime(path)))
    return merged


_RECHECK_SECONDS = 2.0
_merged_cache: dict[tuple, tuple[float, dict]] = {}


def strings_for(templates_dir: Path, treatment: str, locale: str) -> dict[str, object]:
    """All messages for a treatment in a locale, most specific first, English filling the gaps.

    Cached per (folder, treatment, locale); an edited strings file is picked up within two seconds, so a
    long-running server or worker never needs a restart after marketing changes a word."""
    key = (templates_dir, treatment, locale)
    hit = _merged_cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _RECHECK_SECONDS:
        return hit[1]
    if hit is not None:
        _namespaces.cache_clear()
    value = _strings_for(templates_dir, treatment, locale)
    _merged_cache[key] = (now, value)
    return value


def _strings_for(templates_dir: Path, treatment: str, locale: str) -> dict[str, object]:
    langs = _candidates(locale)
    out: dict[str, object] = dict(_merged(templates_dir, treatment, langs, None))
    for ns in sorted(set(_namespaces(templates_dir, BASE)) | set(_namespaces(templates_dir, treatment))):
        out[ns] = _merged(templates_dir, treatment, langs, ns)
    return out


def missing_keys(templates_dir: Path, treatment: str, locale: str) -> set[str]:
    """Keys ("page.pay" for a channel's words) English has that the customer's language lacks (for lint)."""
    langs = [c for c in _candidates(locale) if c.split("-")[0] != FALLBACK]
    if not langs:  # an English locale: English is complete by definition
        return set()
    namespaces = set(_namespaces(templates_dir, BASE)) | set(_namespaces(templates_dir, treatment))
    missing = set(_merged(templates_dir, treatment, [FALLBACK], None)) - set(
        _merged(templates_dir, treatment, langs, None))
    for ns in namespaces:
        own = set(_merged(templates_dir, treatment, langs, ns)) if langs else set()
        missing |= {f"{ns}.{k}" for k in set(_merged(templates_dir, treatment, [FALLBACK], ns)) - own}
    return missing
