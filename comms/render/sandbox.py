"""The one way templates run: sandboxed Jinja with strict undefined names and bounded time and size.

Templates and customer data are untrusted. Marketing edits templates, so they run in Jinja's
``ImmutableSandboxedEnvironment`` (no attribute tricks, no mutation of the context) with ``StrictUndefined``
(a misspelled variable is an error, never an empty string in a customer's letter). The sandbox does not
bound resources, so :func:`render_limited` does: output is streamed and cut at ``max_bytes``, and a timer
stops a render that runs longer than ``max_seconds`` (an interval timer on the main thread; elsewhere the
time is checked between output chunks).

HTML outputs autoescape everything (``html_environment``); subjects and plain-text parts use
``text_environment``, which does not escape (and must never be put into HTML).
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ..errors import CommsError
from . import formatting as fmt


class RenderError(CommsError):
    """A template cannot be rendered for a customer: undefined name, syntax, limit, sandbox violation."""


def _filters(env: ImmutableSandboxedEnvironment) -> None:
    env.filters.update(money=fmt.money, number=fmt.number, percent=fmt.percent, day=fmt.day)


@lru_cache(maxsize=None)
def html_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                                        lstrip_blocks=True, keep_trailing_newline=True)
    _filters(env)
    return env


@lru_cache(maxsize=None)
def text_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined, trim_blocks=True,
                                        lstrip_blocks=True, keep_trailing_newline=True)
    _filters(env)
    return env


class _Timeout(Exception):
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or seconds <= 0 \
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        # not on the main thread, or nested in an outer render whose timer already runs: the outer
        # deadline and the chunk checks below bound this one
        yield
        return

    def _raise(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_limited(template, context: dict[str, Any], *, max_bytes: int = 1_000_000,
                   max_seconds: float = 2.0, name: str = "") -> str:
    """Render a compiled template with bounded output size and time; every failure is a RenderError."""
    label = name or getattr(template, "name", None) or "template"
    start = time.monotonic()
    parts: list[str] = []
    size = 0
    try:
        with _deadline(max_seconds):
            for n, chunk in enumerate(template.generate(context)):
                size += len(chunk)
                if size > max_bytes:
                    raise RenderError(f"{label}: output larger than {max_bytes} characters")
                if n % 32 == 31 and time.monotonic() - start > max_seconds:
                    raise _Timeout()
                parts.append(chunk)
    except _Timeout:
        raise RenderError(f"{label}: render took longer than {max_seconds:g} s") from None
    except UndefinedError as exc:
        raise RenderError(f"{label}: undefined variable: {exc.message}") from None
    except SecurityError as exc:
        raise RenderError(f"{label}: not allowed in a template: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"{label}: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError, MemoryError) as exc:
        raise RenderError(f"{label}: {type(exc).__name__}: {exc}") from None
    return "".join(parts)


def compile_template(source: str, *, html: bool, name: str = ""):
    """Compile once (per template version); syntax errors become one-line RenderErrors."""
    env = html_environment() if html else text_environment()
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise RenderError(f"{name or 'template'} line {exc.lineno}: {exc.message}") from None
