"""E-mail templates: a treatment's MJML assembled from its own files and the shared ones, compiled once.

Where the sources come from (the treatment wins, file by file)::

    templates/_base/email/layout.mjml       the <mjml> document: head, fonts, direction, then includes
    templates/_base/email/<partial>.mjml    header, footer (with the opt-out), invoices, amount, pay, ...
    templates/_base/email/text.txt.j2       the plain-text part (Jinja, not escaped)
    templates/<treatment>/email.mjml        the treatment's content: included by the layout as content.mjml
    templates/<treatment>/email/<file>      overrides of any file above for this treatment

``<mj-include path="footer.mjml" />`` is resolved here, as text, before compiling (MRML's own include
loses the body width for included sections, and resolving here lets the version hash cover every file).
The assembled MJML is compiled once with mjml-python (MRML keeps Jinja tags intact), and the resulting HTML
is compiled once as a sandboxed, autoescaping Jinja template; both are cached by the SHA-256 of the
sources, so a template version is compiled once per process however many customers it renders for.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateSyntaxError
from mjml import mjml2html

from .sandbox import RenderError, compile_template, html_environment, text_environment

BASE = "_base"
LAYOUT = "layout.mjml"
CONTENT = "content.mjml"
TEXT = "text.txt.j2"
MAX_DEPTH = 8
_INCLUDE = re.compile(r'<mj-include\s+path\s*=\s*"([^"]+)"\s*/?>(?:\s*</mj-include>)?')
_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_LEFTOVER = re.compile(r"<(mj-[a-z0-9-]+)")
# Line breaks only where HTML ignores them (inside table structure, after head elements): never between
# inline-block columns, where a space would push the second column onto a new line.
_BREAK = re.compile(r"(</(?:td|th|tr|tbody|thead|table|style|title|head)>|<(?:tbody|tr)\b[^>]*>)(?=<)")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_CACHE_SIZE = 64


@dataclass(frozen=True)
class EmailTemplate:
    """One compiled version of a treatment's e-mail: Jinja templates for the HTML and the text part."""

    treatment: str
    version: str            # first 16 hex digits of the SHA-256 of all sources
    html: object            # jinja2 Template over the MJML-compiled HTML
    text: object            # jinja2 Template (not escaping) for the text part
    mjml_source: str        # the assembled MJML, with Jinja tags (for the naive benchmark and lint)
    html_source: str        # the compiled HTML, with Jinja tags
    text_source: str        # the plain-text template
    files: tuple[Path, ...]  # every source file that went in, for messages that name a file


class TemplateSources:
    """Finds a treatment's e-mail files: its own folder first, then the shared base."""

    def __init__(self, templates_dir: Path, treatment: str):
        self.root = Path(templates_dir)
        self.treatment = treatment
        if not _SAFE_NAME.fullmatch(treatment) or not (self.root / treatment).is_dir():
            raise RenderError(f"unknown treatment {treatment!r}: no folder {self.root / treatment}")

    def path(self, name: str) -> Path:
        if name == CONTENT:
            path = self.root / self.treatment / "email.mjml"
            if not path.is_file():
                raise RenderError(f"{path}: missing (every treatment needs its e-mail content)")
            return path
        if not _SAFE_NAME.fullmatch(name):
            raise RenderError(f"mj-include path {name!r}: only a file name in templates/_base/email or "
                              f"templates/{self.treatment}/email is allowed")
        for folder in (self.root / self.treatment / "email", self.root / BASE / "email"):
            if (folder / name).is_file():
                return folder / name
        raise RenderError(f"mj-include {name!r}: no such file in {self.root / self.treatment / 'email'} "
                          f"or {self.root / BASE / 'email'}")


def _check_jinja(path: Path, source: str, *, html: bool) -> None:
    """Syntax errors with the file and line they are in (after MJML, lines would mean nothing)."""
    env = html_environment() if html else text_environment()
    try:
        env.parse(source)
    except TemplateSyntaxError as exc:
        raise RenderError(f"{path} line {exc.lineno}: {exc.message}") from None


def assemble(sources: TemplateSources) -> tuple[str, list[tuple[Path, str]]]:
    """The layout with every include replaced by its file's text; the files read, in order."""
    read: dict[Path, str] = {}

    def load(name: str, chain: tuple[str, ...]) -> str:
        if name in chain:
            raise RenderError(f"mj-include cycle: {' -> '.join((*chain, name))}")
        if len(chain) > MAX_DEPTH:
            raise RenderError(f"mj-include nested deeper than {MAX_DEPTH}: {' -> '.join(chain)}")
        path = sources.path(name)
        if path not in read:
            read[path] = path.read_text(encoding="utf-8")
            _check_jinja(path, read[path], html=True)
        source = _COMMENT.sub("", read[path])  # Jinja comments never reach the output, nor MRML
        return _INCLUDE.sub(lambda m: load(m.group(1), (*chain, name)), source).strip()

    return load(LAYOUT, ()), list(read.items())


def _locate_mjml_error(files: list[tuple[Path, str]], message: str) -> str:
    """Compile each file on its own to name the one MRML cannot parse."""
    for path, source in files:
        if path.name == LAYOUT:
            continue
        try:
            body = _INCLUDE.sub("", _COMMENT.sub("", source))
            mjml2html(f"<mjml><mj-body>{body}</mj-body></mjml>", disable_comments=True)
        except ValueError as exc:
            return f"{path}: MJML error: {exc}"
    return f"{files[0][0] if files else 'layout'}: MJML error: {message}"


def compile_mjml(source: str, files: list[tuple[Path, str]] | None = None) -> str:
    """MJML to HTML with mjml-python; every problem becomes a RenderError naming the file."""
    files = files or []
    try:
        html = mjml2html(source, disable_comments=True, fonts={})
    except (ValueError, RuntimeError) as exc:
        raise RenderError(_locate_mjml_error(files, str(exc))) from None
    html = _BREAK.sub("\\1\n", html)  # short lines: the 8bit body must keep lines under 998 octets
    leftover = _LEFTOVER.search(html)
    if leftover:
        tag = leftover.group(1)
        where = next((str(p) for p, s in files if f"<{tag}" in s), "the assembled e-mail")
        raise RenderError(f"{where}: MJML error: unknown element <{tag}>")
    return html


_cache: OrderedDict[str, EmailTemplate] = OrderedDict()
_lock = threading.Lock()
compile_count = 0  # MJML compilations in this process (tests check that a version compiles once)


def load_email_template(templates_dir: Path, treatment: str) -> EmailTemplate:
    """The compiled e-mail template of a treatment's current sources (compiled once per content hash)."""
    global compile_count
    sources = TemplateSources(templates_dir, treatment)
    mjml_source, files = assemble(sources)
    text_path = sources.path(TEXT)
    text_source = text_path.read_text(encoding="utf-8")
    _check_jinja(text_path, text_source, html=False)
    digest = hashlib.sha256()
    for part in (mjml_source, "\0", text_source):
        digest.update(part.encode("utf-8"))
    version = digest.hexdigest()[:16]
    key = f"{sources.root.resolve()}:{treatment}:{version}"  # files named in errors belong to this folder
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    html_source = compile_mjml(mjml_source, files)
    compile_count += 1
    label = f"{sources.root / treatment / 'email.mjml'}"
    template = EmailTemplate(
        treatment=treatment, version=version,
        html=compile_template(html_source, html=True, name=label),
        text=compile_template(text_source, html=False, name=str(text_path)),
        mjml_source=mjml_source, html_source=html_source, text_source=text_source,
        files=tuple(p for p, _ in files) + (text_path,))
    with _lock:
        _cache[key] = template
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return template
