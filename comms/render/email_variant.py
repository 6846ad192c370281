"""Per-locale variants of a compiled e-mail: what is the same for every customer of a locale, resolved once.

The MJML-compiled HTML repeats ``{{ email.font_family }}`` and ``{{ email.align }}`` in every element
(mj-attributes copies them), and reads the treatment's words (``{{ t.greeting }}``) as lazily rendered
snippets, each its own sandboxed render. Per customer that is hundreds of sandboxed lookups that give the
same answer for everyone who reads the same language. So, once per (template version, locale):

* locale constants (direction, language tag, font stack, alignment, the treatment's title) are written
  into the template source as literal text, HTML-escaped for the HTML part;
* a word without Jinja (``Open invoices``) is written in as literal text, escaped the same way;
* a word with Jinja (``Dear {{ customer.greeting_name }},``) is inlined as its own source, its static text
  HTML-escaped, its expressions left to autoescape: the result is the text the word renders to, escaped
  once, exactly as when the word is rendered on its own and then inserted. Inlined words are fenced with
  ``{{ '' }}`` so the environment's trim_blocks/lstrip_blocks act on them as they do on their own, and
  wrapped in ``{% with %}`` so a ``{% set %}`` inside cannot leak.

Only the plain form ``{{ t.key }}`` / ``{{ t.ns.key }}`` / ``{{ email.align }}`` is replaced; any other use
(``{% if t.x %}``, filters, ``t[key]``) still reads the context at render time. A word marked ``|safe`` or
a literal containing ``{`` is left to the context as well. The tests render every shipped template both
ways for every sample customer and require identical output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from .sandbox import RenderError, html_environment, text_environment

_PRINT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}")
_TAG = re.compile(r"""\{\{(?:[^}'"]|'[^']*'|"[^"]*"|\}(?!\}))*\}\}"""
                  r"""|\{%(?:[^%'"]|'[^']*'|"[^"]*"|%(?!\}))*%\}|\{#.*?#\}""", re.S)
GUARD = "{{ '' }}"


def _escape_static(snippet: str) -> str:
    """HTML-escape the text between Jinja tags; keep the tags as they are."""
    out: list[str] = []
    pos = 0
    for m in _TAG.finditer(snippet):
        out.append(str(escape(snippet[pos:m.start()])))
        out.append(m.group(0))
        pos = m.end()
    out.append(str(escape(snippet[pos:])))
    return "".join(out)


def _lookup(words: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = words
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def specialize(source: str, *, html: bool, constants: Mapping[str, str], words: Mapping[str, Any]) -> str:
    """The template source with locale constants and the treatment's words written in (see the module)."""

    def literal(value: str, original: str) -> str:
        text = str(escape(value)) if html else value
        if "{" in text:
            return original
        return f"{GUARD}{text}{GUARD}" if "\n" in text or text[-1:].isspace() else text

    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name in constants:
            return literal(constants[name], m.group(0))
        if not name.startswith("t."):
            return m.group(0)
        value = _lookup(words, name[2:].split("."))
        if not isinstance(value, str):
            return m.group(0)
        if "{" not in value:
            return literal(value, m.group(0))
        if re.search(r"\|\s*safe\b", value):
            return m.group(0)
        snippet = _escape_static(value) if html else value
        if "{%" in value:
            snippet = f"{{% with %}}{snippet}{{% endwith %}}"
        return f"{GUARD}{snippet}{GUARD}"

    return _PRINT.sub(replace, source)


class _DictFirstSandbox(ImmutableSandboxedEnvironment):
    """The project's sandbox, reading ``a.b`` on a plain dict as ``a["b"]`` first.

    Jinja tries the attribute first and the key second, and a missing attribute costs an exception: for
    the context's dicts that is most of a render. Item access on a dict is what the sandbox allows anyway
    (no attribute is reached), so this reads the same values; it differs only for a key named like a dict
    method (items, keys, values, get), which context keys never are.
    """

    def getattr(self, obj, attribute):
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _environment(base: ImmutableSandboxedEnvironment) -> ImmutableSandboxedEnvironment:
    env = _DictFirstSandbox(autoescape=base.autoescape, undefined=base.undefined, trim_blocks=base.trim_blocks,
                            lstrip_blocks=base.lstrip_blocks, keep_trailing_newline=base.keep_trailing_newline)
    env.filters.update(base.filters)
    env.tests.update(base.tests)
    env.globals.update(base.globals)
    return env


_ENVS: dict[bool, ImmutableSandboxedEnvironment] = {}


def _compile(source: str, *, html: bool, name: str):
    env = _ENVS.get(html)
    if env is None:
        env = _ENVS[html] = _environment(html_environment() if html else text_environment())
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise RenderError(f"{name} line {exc.lineno}: {exc.message}") from None


@dataclass(frozen=True)
class LocaleVariant:
    """A template version specialised for one locale, and what it assumed of the context.

    ``head`` renders the subject, ``separator``, then the text part, in one bounded render (the
    separator is 64 random bits drawn at compile time: customer data cannot contain it); ``html`` renders
    the HTML part once the subject is known (``email.subject`` is in its <title>).
    """

    locale: str
    head: Any
    separator: str
    html: Any
    constants: Mapping[str, str]


def build_variant(html_source: str, text_source: str, *, name: str, locale: str,
                  constants: Mapping[str, str], words: Mapping[str, Any]) -> LocaleVariant | None:
    """Compile the variant; None when it cannot be built (no subject, a word that does not compile): the
    caller then renders the general template with the context's words, which reports the problem."""
    subject = _lookup(words, ["email", "subject"])
    if not isinstance(subject, str):
        return None
    separator = f"\x00{os.urandom(8).hex()}\x00"
    try:
        head = _compile(f"{GUARD}{subject}{GUARD}{separator}{GUARD}"
                        + specialize(text_source, html=False, constants=constants, words=words),
                        html=False, name=f"{name} text part ({locale})")
        html = _compile(specialize(html_source, html=True, constants=constants, words=words),
                        html=True, name=f"{name} ({locale})")
    except RenderError:
        return None
    return LocaleVariant(locale, head, separator, html, dict(constants))
