"""A small, safe, vectorized expression language for segment rules and derived fields.

User text is never given to ``eval``/``exec``. It is parsed with ``ast.parse(text, mode="eval")`` and
every node is checked against a whitelist; anything else (attribute access, subscripts, lambdas,
comprehensions, f-strings, ``:=``, ``**``, calls to unknown names...) is a :class:`RuleError` at compile
time. A compiled expression is a tree of small closures that work on whole pandas columns at once.

Language::

    numbers, 'strings', True, False, None, column names
    + - * / // %   unary -        (numbers only; use concat(...) for text)
    == != < <= > >=  (chained: 30 < days_past_due <= 90)
    and  or  not                  (element-wise; a missing value counts as false)
    x / 0, x // 0, x % 0          (a missing value, not an infinity)
    x in [1, 2]   x not in ['a', 'b']
    min(a, b, ...) max(a, b, ...) (skip missing values, like SQL least/greatest)
    abs(x) round(x, n) clip(x, lo, hi)
    coalesce(a, b, ...) if_else(cond, a, b) is_null(x)
    lower(s) upper(s) concat(a, b, ...)

Money: Decimal columns (object dtype holding ``Decimal`` or Arrow ``decimal128``) are converted to
float64 when used in arithmetic or comparisons. Rules only compare and rank amounts, so float precision
(about 15 significant digits) is enough there; amounts that are shown or charged never come from here.
Arrow decimals convert in C (a few ms per million rows); object columns of ``Decimal`` go through Python
objects (about 0.35 s per million), so hot paths should hand in Arrow-backed or float columns.

Example::

    rule = compile_expression("band == 'red' and days_past_due > 90", where="segments.yaml: final")
    mask = rule.mask(frame)            # numpy bool array, missing -> False
"""

from __future__ import annotations

import ast
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import RuleError
from .values import FUNCTIONS, Context, Value, broadcast, is_series, is_text, numeric, truth

__all__ = ["Expression", "compile_expression", "FUNCTIONS"]

MAX_LENGTH = 4000
MAX_NODES = 1000
MAX_DEPTH = 60  # keeps compiling and evaluating far from Python's recursion limit

Fn = Callable[[Context], Value]

_UNSUPPORTED = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.JoinedStr: "f-strings", ast.FormattedValue: "f-strings",
    ast.NamedExpr: "assignment (:=)", ast.Starred: "starred arguments", ast.Dict: "dict literals",
    ast.IfExp: "conditional expression (use if_else(cond, a, b))", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slices",
}
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


# --- the compiled expression --------------------------------------------------------------------------

class Expression:
    """A compiled, checked expression. ``names`` are the columns it reads."""

    def __init__(self, text: str, where: str, root: Fn, names: frozenset[str]):
        self.text = text
        self.where = where
        self._root = root
        self.names = names

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def _fail(self, problem: str):
        raise RuleError(self.text, problem, self.where)

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """The value for every row of ``frame`` as a Series on the frame's index (scalars broadcast)."""
        missing = sorted(self.names - set(frame.columns))
        if missing:
            available = ", ".join(sorted(map(str, frame.columns)))
            self._fail(f"unknown column {missing[0]!r} (available: {available})")
        ctx = Context(frame, self)
        try:
            with np.errstate(all="ignore"):
                value = self._root(ctx)
        except RuleError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:
            self._fail(f"cannot be evaluated: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return broadcast(value, ctx)

    def numbers(self, frame: pd.DataFrame) -> np.ndarray:
        """The expression as float64 numbers (money converted, missing -> NaN); text is a RuleError."""
        value = self.evaluate(frame)
        ctx = Context(frame, self)
        return np.asarray(numeric(value, ctx, "a numeric rule"), dtype=np.float64)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """The expression as a rule: a numpy bool array, missing values count as false."""
        value = self.evaluate(frame)
        return np.asarray(truth(value, Context(frame, self)), dtype=bool)


def compile_expression(text: str, where: str = "") -> Expression:
    """Parse and check ``text``; raises RuleError naming the problem (and ``where`` it came from).

    Example: compile_expression("days_past_due > 90 and not dispute").names == {"days_past_due", "dispute"}
    """
    if not isinstance(text, str) or not text.strip():
        raise RuleError(str(text), "empty expression", where)
    if len(text) > MAX_LENGTH:
        raise RuleError(text[:60] + "...", f"longer than {MAX_LENGTH} characters", where)
    source = " ".join(text.split("\n")).strip()  # one line, so columns are meaningful
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        col = exc.offset if exc.offset and exc.offset > 0 else len(source) + 1
        where_ = "at the end" if col > len(source) else f"at column {col}"
        raise RuleError(text, f"syntax error {where_}: {exc.msg}", where) from None
    except (RecursionError, MemoryError, ValueError):
        raise RuleError(text, "expression too deeply nested or invalid", where) from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise RuleError(text, f"expression too large (more than {MAX_NODES} parts)", where)
    if _depth(tree.body) > MAX_DEPTH:
        raise RuleError(text, f"expression nested deeper than {MAX_DEPTH} levels", where)
    builder = _Compiler(text, where)
    root = builder.visit(tree.body)
    expr = Expression(text, where, root, frozenset(builder.names))
    return expr


def _depth(node: ast.AST) -> int:
    """Nesting depth, computed without recursion (the tree may be deep by design of an attacker)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level + 1) for child in ast.iter_child_nodes(current))
    return deepest


class _Compiler:
    """Walks the whitelisted AST and turns each node into a closure over an evaluation context."""

    def __init__(self, text: str, where: str):
        self.text = text
        self.where = where
        self.names: set[str] = set()

    def fail(self, problem: str, node: ast.AST | None = None):
        at = f" (column {node.col_offset + 1})" if node is not None and hasattr(node, "col_offset") else ""
        raise RuleError(self.text, problem + at, self.where)

    def visit(self, node: ast.AST) -> Fn:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            what = _UNSUPPORTED.get(type(node), type(node).__name__)
            self.fail(f"unsupported syntax: {what}", node)
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Fn:
        value = node.value
        if value is not None and not isinstance(value, (bool, int, float, str)):
            self.fail(f"unsupported constant {value!r}", node)
        return lambda ctx: value

    def visit_Name(self, node: ast.Name) -> Fn:
        name = node.id
        if name.startswith("__"):
            self.fail(f"names beginning with '__' are not allowed: {name!r}", node)
        if name in FUNCTIONS:
            self.fail(f"{name!r} is a function: call it as {name}(...)", node)
        self.names.add(name)

        def column(ctx: Context) -> Value:
            series = ctx.raw.get(name)
            if series is None:
                series = ctx.raw[name] = ctx.frame[name]
            return series
        return column

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Fn:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            def not_(ctx):
                v = truth(operand(ctx), ctx)
                return ~v if is_series(v) else not v
            return not_
        if isinstance(node.op, ast.USub):
            return lambda ctx: -numeric(operand(ctx), ctx, "unary -")
        if isinstance(node.op, ast.UAdd):
            return lambda ctx: numeric(operand(ctx), ctx, "unary +")
        self.fail("unsupported syntax: bitwise operator '~' (use not)", node)

    def visit_BinOp(self, node: ast.BinOp) -> Fn:
        symbol = _ARITH.get(type(node.op))
        if symbol is None:
            name = {ast.Pow: "power (**)", ast.MatMult: "matrix multiplication (@)"}.get(
                type(node.op), "bitwise operator (use and / or / not)")
            self.fail(f"unsupported syntax: {name}", node)
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant) and isinstance(side.value, str):
                self.fail(f"'{symbol}' needs numbers, got text {side.value!r} (use concat(...) for text)", node)
        left, right = self.visit(node.left), self.visit(node.right)
        op = node.op

        def arith(ctx):
            a = numeric(left(ctx), ctx, f"'{symbol}'")
            b = numeric(right(ctx), ctx, f"'{symbol}'")
            if isinstance(op, ast.Add):
                return a + b
            if isinstance(op, ast.Sub):
                return a - b
            if isinstance(op, ast.Mult):
                return a * b
            # Dividing by zero gives a missing value (false in a rule), never an infinity or an error.
            if not is_series(b):
                if b == 0 or np.isnan(b):
                    return a * np.nan if is_series(a) else np.nan
            if isinstance(op, ast.Div):
                out = a / b
            elif isinstance(op, ast.FloorDiv):
                out = a // b
            else:
                out = a % b
            return out.where(b != 0) if is_series(b) else out
        return arith

    def visit_BoolOp(self, node: ast.BoolOp) -> Fn:
        parts = [self.visit(v) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def boolop(ctx):
            out = truth(parts[0](ctx), ctx)
            for p in parts[1:]:
                v = truth(p(ctx), ctx)
                if is_series(out) or is_series(v):
                    out = (out & v) if is_and else (out | v)
                else:
                    out = (out and v) if is_and else (out or v)
            return out
        return boolop

    def visit_Compare(self, node: ast.Compare) -> Fn:
        operands = [node.left, *node.comparators]
        steps = []
        for i, op in enumerate(node.ops):
            left_node, right_node = operands[i], operands[i + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                steps.append(self._membership(op, left_node, right_node))
                continue
            symbol = _COMPARE.get(type(op))
            if symbol is None:
                self.fail("unsupported syntax: 'is' comparison (use is_null(x))", node)
            steps.append(self._comparison(symbol, left_node, right_node))

        def compare(ctx):
            out = None
            for step in steps:
                v = step(ctx)
                out = v if out is None else (out & v if is_series(out) or is_series(v) else out and v)
            return out
        return compare

    def _comparison(self, symbol: str, left_node: ast.AST, right_node: ast.AST) -> Fn:
        left, right = self.visit(left_node), self.visit(right_node)

        def cmp(ctx):
            a, b = left(ctx), right(ctx)
            if not (is_text(a) or is_text(b)):
                a = numeric(a, ctx, f"'{symbol}'")
                b = numeric(b, ctx, f"'{symbol}'")
            elif not (is_text(a) or a is None) or not (is_text(b) or b is None):
                if symbol in ("==", "!="):
                    pass  # text never equals a number: a plain False/True column
                else:
                    ctx.expression._fail(f"cannot compare text with a number using '{symbol}'")
            try:
                if symbol == "==":
                    return a == b
                if symbol == "!=":
                    return a != b
                if symbol == "<":
                    return a < b
                if symbol == "<=":
                    return a <= b
                if symbol == ">":
                    return a > b
                return a >= b
            except TypeError:
                ctx.expression._fail(f"cannot compare these values using '{symbol}'")
        return cmp

    def _membership(self, op: ast.cmpop, left_node: ast.AST, right_node: ast.AST) -> Fn:
        if not isinstance(right_node, (ast.List, ast.Tuple, ast.Set)):
            self.fail("'in' needs a literal list on its right, like x in ['a', 'b']", right_node)
        values = []
        for elt in right_node.elts:
            if isinstance(elt, ast.UnaryOp) and isinstance(elt.op, ast.USub) \
                    and isinstance(elt.operand, ast.Constant) and isinstance(elt.operand.value, (int, float)):
                values.append(-elt.operand.value)
            elif isinstance(elt, ast.Constant) and (elt.value is None
                                                    or isinstance(elt.value, (bool, int, float, str))):
                values.append(elt.value)
            else:
                self.fail("the list after 'in' may hold only numbers, strings, True/False/None", elt)
        left = self.visit(left_node)
        negate = isinstance(op, ast.NotIn)
        texts = [v for v in values if isinstance(v, str)]
        numbers = [float(v) for v in values if v is not None and not isinstance(v, str)]
        has_none = any(v is None for v in values)

        def member(ctx):
            a = left(ctx)
            if is_series(a):
                if is_text(a):
                    hit = a.isin(texts).fillna(False).astype(bool)
                else:
                    hit = numeric(a, ctx, "'in'").isin(numbers)
                if has_none:
                    hit = hit | a.isna()
                return ~hit if negate else hit
            hit = a in values if a is not None else has_none
            return not hit if negate else hit
        return member

    def visit_Call(self, node: ast.Call) -> Fn:
        if not isinstance(node.func, ast.Name):
            what = _UNSUPPORTED.get(type(node.func), "calling an expression")
            self.fail(f"unsupported syntax: {what}", node)
        name = node.func.id
        if name not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            self.fail(f"unknown function {name!r} (known: {known})", node)
        if node.keywords:
            self.fail(f"{name}() takes no keyword arguments", node)
        fn, low, high = FUNCTIONS[name]
        n = len(node.args)
        if n < low or (high is not None and n > high):
            expected = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            self.fail(f"{name}() takes {expected} arguments, got {n}", node)
        if name == "round" and n == 2 and not (isinstance(node.args[1], ast.Constant)
                                               and type(node.args[1].value) is int):
            self.fail("round(x, n) needs a whole number n", node)
        args = [self.visit(a) for a in node.args]
        return lambda ctx: fn(ctx, [a(ctx) for a in args])

    def visit_List(self, node):
        self.fail("lists are only allowed after 'in'", node)

    visit_Tuple = visit_Set = visit_List
