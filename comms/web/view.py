"""Page templates and static assets: compiled once, rendered per customer in the sandbox.

``page.html`` comes from ``templates/<treatment>/`` (falling back to the shared one) and extends
``base.html`` in ``templates/_base/page/``, the shared layout with one block per section, so marketing can
reword, reorder or replace sections per treatment. Every other page (pay, checkout, video, unsubscribe,
unavailable) and every partial is shared. Templates
are untrusted (marketing edits them): they run in Jinja's ImmutableSandboxedEnvironment with StrictUndefined
and autoescape, through :func:`comms.render.sandbox.render_limited` (time and size bounds). Templates are
compiled once; the folder is looked at once a second, and any change compiles them again.

The page environment (:class:`PageEnvironment`) keeps every rule of the sandbox and only shortens how
``a.b`` reads the plain dicts and word tables a page context is made of (a page reads some 200 of them).

Static assets (``page.css``, ``page.js`` in ``templates/_base/page/``) are served from memory with a content
hash in their URL, so browsers may cache them for a year; no other file can be served from there.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..render import formatting as fmt
from ..render.context import Messages
from ..render.sandbox import render_limited
from ..render.strings import strings_for

BASE_DIR = ("_base", "page")
STATIC_FILES = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
NO_TREATMENT = "_base"  # strings_for() with only the shared words
PAGE_LIMIT_BYTES = 400_000


class _PageLoader(BaseLoader):
    """``page.html`` from the treatment's folder when it has one; everything else only from the shared
    page folder (a treatment's letter or e-mail files can never be picked up as a page)."""

    def __init__(self, treatment_dir: Path | None, base_dir: Path):
        self.treatment = FileSystemLoader(str(treatment_dir)) if treatment_dir else None
        self.base = FileSystemLoader(str(base_dir))

    def get_source(self, environment, template):
        if self.treatment is not None and template == "page.html":
            try:
                return self.treatment.get_source(environment, template)
            except TemplateNotFound:
                pass
        return self.base.get_source(environment, template)


# what getattr() finds on these types before it looks at their items (a Messages object also has attributes
# of its own, looked at per object)
_DICT_NAMES = frozenset(dir(dict))
_MESSAGES_NAMES = frozenset(dir(Messages))


class PageEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox; ``a.b`` on a plain dict or a word table returns the item at once when ``b`` names
    no attribute of it, which is what the sandbox returns too, after raising and catching an AttributeError
    (most of the cost of showing a value). Anything else, and any name the type has, goes the sandbox's way."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict:
            item = attribute not in _DICT_NAMES
        else:
            item = kind is Messages and attribute not in _MESSAGES_NAMES and attribute not in vars(obj)
        if not item:
            return super().getattr(obj, attribute)
        try:
            return obj[attribute]
        except LookupError:
            return self.undefined(obj=obj, name=attribute)


class PageTemplates:
    """One sandboxed environment per treatment (search path: the treatment, then the shared page folder)."""

    def __init__(self, templates_dir: Path):
        self.templates_dir = Path(templates_dir)
        self.base = self.templates_dir.joinpath(*BASE_DIR)
        self._envs: dict[str, PageEnvironment] = {}
        self._lock = threading.Lock()
        self._static: dict[str, tuple[float, bytes, str]] = {}
        self._messages_compiled: dict[str, Any] = {}
        self._version = (-1e9, 0.0)
        self._compiled_version = self.version()
        self._static_urls: tuple[float, dict[str, str]] = (-1.0, {})

    def environment(self, treatment: str) -> PageEnvironment:
        env = self._envs.get(treatment)
        if env is None:
            with self._lock:
                env = self._envs.get(treatment)
                if env is None:
                    own = self.templates_dir / treatment
                    own_dir = own if treatment and treatment != NO_TREATMENT and own.is_dir() else None
                    env = PageEnvironment(
                        loader=_PageLoader(own_dir, self.base), autoescape=True, undefined=StrictUndefined,
                        trim_blocks=True, lstrip_blocks=True, auto_reload=False, cache_size=200)
                    env.filters.update(money=fmt.money, number=fmt.number, percent=fmt.percent, day=fmt.day)
                    self._envs[treatment] = env
        return env

    def render(self, treatment: str, name: str, context: dict[str, Any]) -> str:
        if self.version() != self._compiled_version:  # a file changed: compile again from the new sources
            with self._lock:
                self._envs.clear()
                self._compiled_version = self._version[1]
        template = self.environment(treatment).get_template(name)
        return render_limited(template, context, max_bytes=PAGE_LIMIT_BYTES, max_seconds=2.0,
                              name=f"{treatment}/{name}")

    def version(self) -> float:
        """Changes when any template or words file changes (looked at most once a second): part of the
        page cache's key, so an edit by marketing shows on the next view."""
        now = time.monotonic()
        if now - self._version[0] > 1.0:
            self._version = (now, newest_mtime(str(self.templates_dir)))
        return self._version[1]

    # -- words for pages that have no customer (the neutral page) ---------------------------------------

    def neutral_context(self, locale: str, creditor: dict[str, Any]) -> dict[str, Any]:
        context: dict[str, Any] = {"creditor": creditor, "lang": fmt.language(locale),
                                   "dir": fmt.text_direction(locale)}
        context["t"] = Messages(strings_for(self.templates_dir, NO_TREATMENT, locale), context,
                                self._messages_compiled)
        context["static"] = self.static_urls()
        return context

    # -- static assets ------------------------------------------------------------------------------------

    def static(self, name: str) -> tuple[bytes, str] | None:
        """(bytes, content type) of an allowed asset, re-read when its file changes; None otherwise."""
        if name not in STATIC_FILES:
            return None
        path = self.base / name
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._static.get(name)
        if cached is None or cached[0] != mtime:
            data = path.read_bytes()
            cached = self._static[name] = (mtime, data, hashlib.sha256(data).hexdigest()[:12])
        return cached[1], STATIC_FILES[name]

    def static_urls(self) -> dict[str, str]:
        """{"css": url, "js": url}, the same dict until a template file changes (templates cannot alter it)."""
        version = self.version()
        if self._static_urls[0] != version:
            out = {}
            for name in STATIC_FILES:
                self.static(name)
                digest = self._static.get(name, (0, b"", "0"))[2]
                out[name.split(".")[1]] = f"/static/{name}?v={digest}"
            self._static_urls = (version, out)
        return self._static_urls[1]


def newest_mtime(folder: str) -> float:
    """The newest modification time of a folder tree (files and folders; symbolic links to folders are not
    followed): os.scandir, as Path.rglob with a stat per path costs ten times more on every check."""
    newest = 0.0
    pending = [folder]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    try:
                        newest = max(newest, entry.stat().st_mtime)
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return newest


@lru_cache(maxsize=4096)
def months_label(months: int, locale: str) -> str:
    """'6 months', '6 mesi', '6 miesięcy', '6 месяцев', '6 חודשים', '6个月' (CLDR plural rules)."""
    from babel.units import format_unit
    loc = fmt.locale_for(locale)
    text = format_unit(months, "duration-month", length="long", locale=loc)
    if "month" in text and loc.language != "en":  # CLDR has no long form here (it, zh): the short one is a word
        text = format_unit(months, "duration-month", length="short", locale=loc)
    return text


__all__ = ["PageEnvironment", "PageTemplates", "months_label", "newest_mtime"]
