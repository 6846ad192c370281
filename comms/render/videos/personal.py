"""Which scenes of a video depend on the customer, decided by reading their Jinja, never by guessing.

A scene is static when every snippet it renders (its text layers, QR data, speech and caption) reads only
names that are the same for every customer of a treatment and locale: ``treatment``, ``creditor``,
``segment``, ``campaign``, ``today`` and the treatment's words ``t.<key>`` whose own source again reads only
those. Anything else (``customer``, ``balance``, ``offers``, ``links``, a dynamic ``t[...]``, an unknown name)
makes it personal. The analysis is conservative; and the cache key of a static scene also holds its rendered
words, so even a wrong "static" could only cost a cache miss, never show one customer's data to another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError

from ..sandbox import text_environment

STATIC_ROOTS = frozenset({"treatment", "creditor", "segment", "campaign", "today"})
JINJA_GLOBALS = frozenset({"range", "lipsum", "dict", "cycler", "joiner", "namespace", "loop"})
MESSAGES = "t"


def _chain(node: nodes.Node) -> tuple[list[str], nodes.Node]:
    """``t.video.hello`` -> (['video', 'hello'], Name t); stops at the first non-constant step."""
    path: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            path.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and isinstance(node.arg.value, str):
            path.append(node.arg.value)
            node = node.node
        else:
            return path[::-1], node


def _locals(tree: nodes.Template) -> set[str]:
    names = set()
    for node in tree.find_all((nodes.Assign, nodes.For, nodes.AssignBlock)):
        target = node.target
        for name in ([target] if isinstance(target, nodes.Name) else list(target.find_all(nodes.Name))):
            names.add(name.name)
    for macro in tree.find_all(nodes.Macro):
        names.add(macro.name)
        names.update(a.name for a in macro.args)
    return names


def is_personal(source: str, messages: Mapping[str, Any], _seen: frozenset[str] = frozenset()) -> bool:
    """True when rendering ``source`` may give different text for two customers of the same locale."""
    if "{" not in source:
        return False
    try:
        tree = text_environment().parse(source)
    except TemplateSyntaxError:
        return True  # it will fail to render anyway, with the sandbox's message
    local = _locals(tree)

    def visit(node: nodes.Node) -> bool:
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            path, root = _chain(node)
            if isinstance(root, nodes.Name) and root.name == MESSAGES and path:
                return _message_personal(path, messages, _seen)
        if isinstance(node, nodes.Name) and node.ctx == "load":
            name = node.name
            return not (name in STATIC_ROOTS or name in JINJA_GLOBALS or name in local)
        return any(visit(child) for child in node.iter_child_nodes())

    return visit(tree)


def _message_personal(path: list[str], messages: Mapping[str, Any], seen: frozenset[str]) -> bool:
    key = ".".join(path)
    if key in seen:
        return True  # a message that reads itself: let the sandbox report it
    value: Any = messages
    for step in path:
        if not isinstance(value, Mapping) or step not in value:
            return True  # unknown key (StrictUndefined fails) or an attribute of a string: be conservative
        value = value[step]
    if not isinstance(value, str):
        return True  # a whole namespace used as a value
    return is_personal(value, messages, seen | {key})
