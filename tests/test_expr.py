"""The safe rule language: what it refuses, what it computes, and how it reports mistakes."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from comms.errors import RuleError
from comms.segment.expr import compile_expression


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "balance": [Decimal("100.00"), Decimal("2500.50"), None, Decimal("0.00")],
        "days_past_due": [0, 45, 95, 200],
        "payment_ratio": [1.0, 0.5, np.nan, 0.1],
        "band": ["green", "yellow", "red", "red"],
        "locale": ["it-IT", "en-GB", None, "he-IL"],
        "dispute": [False, True, False, False],
        "cluster": pd.array([0, 1, None, 2], dtype="Int64"),
    })


@pytest.mark.parametrize("text, problem", [
    ("__import__('os')", "unknown function '__import__'"),
    ("().__class__", "attribute access"),
    ("balance.__class__", "attribute access"),
    ("open('x')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("lambda: 1", "lambda"),
    ("[x for x in balance]", "comprehensions"),
    ("f'{balance}'", "f-strings"),
    ("(x := 1)", "assignment (:=)"),
    ("max(*balance)", "starred"),
    ("balance[0]", "subscripts"),
    ("{'a': 1}", "dict literals"),
    ("2 ** 1000000", "power (**)"),
    ("balance & 1", "bitwise"),
    ("balance is None", "'is' comparison"),
    ("1 if dispute else 2", "if_else"),
    ("'x' * 100000000", "needs numbers"),
    ("__builtins__", "'__'"),
    ("min.__globals__", "attribute access"),
    ("round(balance, ndigits=2)", "keyword"),
    ("balance in balance", "literal list"),
])
def test_unsafe_or_unsupported_syntax_is_refused_at_compile_time(text, problem):
    with pytest.raises(RuleError) as err:
        compile_expression(text, where="segments/default.yaml: segments[0].rule")
    message = str(err.value)
    assert problem in message
    assert message.startswith("segments/default.yaml: segments[0].rule: rule ")
    assert "\n" not in message


def test_syntax_error_reports_the_column():
    with pytest.raises(RuleError, match=r"syntax error at the end"):
        compile_expression("days_past_due > ")


def test_statements_are_syntax_errors_not_executed():
    for text in ("import os", "x = 1", "balance; 1"):
        with pytest.raises(RuleError, match="syntax error"):
            compile_expression(text)


def test_empty_and_wrong_arity_are_refused():
    with pytest.raises(RuleError, match="empty expression"):
        compile_expression("   ")
    with pytest.raises(RuleError, match=r"clip\(\) takes 3 arguments, got 2"):
        compile_expression("clip(balance, 0)")
    with pytest.raises(RuleError, match="'min' is a function"):
        compile_expression("min > 1")


def test_names_are_the_columns_read():
    expr = compile_expression("days_past_due > 90 and not dispute or lower(locale) == 'it-it'")
    assert expr.names == frozenset({"days_past_due", "dispute", "locale"})
    assert expr.text == "days_past_due > 90 and not dispute or lower(locale) == 'it-it'"


def test_unknown_column_lists_the_available_ones(frame):
    expr = compile_expression("balanse > 10", where="rule of 'early'")
    with pytest.raises(RuleError) as err:
        expr.evaluate(frame)
    assert "unknown column 'balanse'" in str(err.value)
    assert "balance, band" in str(err.value)


def test_decimal_money_compares_and_adds(frame):
    assert compile_expression("balance > 1000").mask(frame).tolist() == [False, True, False, False]
    total = compile_expression("balance + 0.5").evaluate(frame)
    assert total.tolist()[:2] == [100.5, 2501.0] and np.isnan(total.iloc[2])


def test_arrow_decimal_money_works_like_decimal_objects():
    table = pa.table({"balance": pa.array([Decimal("10.10"), None, Decimal("99.99")], type=pa.decimal128(18, 2))})
    arrow_frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    assert compile_expression("balance >= 10.1").mask(arrow_frame).tolist() == [True, False, True]
    assert compile_expression("balance * 2").evaluate(arrow_frame).round(2).tolist()[2] == 199.98


def test_chained_comparison_and_boolean_logic(frame):
    assert compile_expression("30 < days_past_due <= 95").mask(frame).tolist() == [False, True, True, False]
    assert compile_expression("days_past_due > 30 and not dispute").mask(frame).tolist() == [False, False, True, True]
    assert compile_expression("dispute or band == 'green'").mask(frame).tolist() == [True, True, False, False]


def test_missing_values_are_false_in_rules(frame):
    assert compile_expression("payment_ratio < 0.6").mask(frame).tolist() == [False, True, False, True]
    assert compile_expression("cluster == 2").mask(frame).tolist() == [False, False, False, True]
    assert compile_expression("is_null(locale)").mask(frame).tolist() == [False, False, True, False]


def test_membership_with_text_and_numbers(frame):
    assert compile_expression("band in ['red', 'yellow']").mask(frame).tolist() == [False, True, True, True]
    assert compile_expression("locale not in ['it-IT']").mask(frame).tolist() == [False, True, True, True]
    assert compile_expression("cluster in [0, 2]").mask(frame).tolist() == [True, False, False, True]
    assert compile_expression("days_past_due in (-1, 45)").mask(frame).tolist() == [False, True, False, False]


def test_arithmetic_and_numeric_functions(frame):
    assert compile_expression("days_past_due // 30 + days_past_due % 30 * 0").evaluate(frame).tolist() == [0, 1, 3, 6]
    assert compile_expression("-days_past_due / 5").evaluate(frame).tolist() == [-0.0, -9.0, -19.0, -40.0]
    assert compile_expression("min(days_past_due, 60, 100)").evaluate(frame).tolist() == [0, 45, 60, 60]
    assert compile_expression("max(days_past_due, 50)").evaluate(frame).tolist() == [50, 50, 95, 200]
    assert compile_expression("clip(days_past_due, 10, 100)").evaluate(frame).tolist() == [10, 45, 95, 100]
    assert compile_expression("abs(0 - days_past_due)").evaluate(frame).tolist() == [0, 45, 95, 200]
    assert compile_expression("round(balance / 3, 1)").evaluate(frame).tolist()[:2] == [33.3, 833.5]
    assert compile_expression("coalesce(payment_ratio, 0)").evaluate(frame).tolist() == [1.0, 0.5, 0.0, 0.1]
    assert compile_expression("if_else(dispute, 1, days_past_due)").evaluate(frame).tolist() == [0, 1, 95, 200]


def test_text_functions(frame):
    assert compile_expression("upper(band)").evaluate(frame).tolist() == ["GREEN", "YELLOW", "RED", "RED"]
    assert compile_expression("concat(band, '-', days_past_due)").evaluate(frame).tolist() == [
        "green-0", "yellow-45", "red-95", "red-200"]
    assert compile_expression("if_else(dispute, 'hold', band)").evaluate(frame).tolist() == [
        "green", "hold", "red", "red"]
    assert compile_expression("lower(coalesce(locale, 'xx'))").evaluate(frame).tolist()[2] == "xx"


def test_scalars_broadcast_to_every_row(frame):
    assert compile_expression("True").mask(frame).tolist() == [True] * 4
    assert compile_expression("1 + 2").evaluate(frame).tolist() == [3] * 4
    assert compile_expression("1 / 0").evaluate(frame).isna().all()


def test_text_in_arithmetic_or_ordering_is_a_rule_error(frame):
    with pytest.raises(RuleError, match="needs numbers"):
        compile_expression("band + 1").evaluate(frame)
    with pytest.raises(RuleError, match="cannot compare text with a number"):
        compile_expression("band > 3").evaluate(frame)
    assert compile_expression("band == 3").mask(frame).tolist() == [False] * 4


def test_deep_nesting_is_a_rule_error_not_a_crash():
    with pytest.raises(RuleError):
        compile_expression("(" * 500 + "1" + ")" * 500)
    with pytest.raises(RuleError, match="too large"):
        compile_expression(" + ".join(["a"] * 900))
    with pytest.raises(RuleError, match="nested deeper"):
        compile_expression(" + ".join(["a"] * 200))
    assert compile_expression(" + ".join(["days_past_due"] * 40)).evaluate(
        pd.DataFrame({"days_past_due": [1]})).tolist() == [40]


def test_a_million_rows_evaluate_vectorized():
    n = 1_000_000
    rng = np.random.default_rng(1)
    big = pd.DataFrame({"days_past_due": rng.integers(0, 400, n), "band": rng.choice(["green", "red"], n)})
    mask = compile_expression("days_past_due > 90 and band == 'red'").mask(big)
    assert mask.sum() == ((big.days_past_due > 90) & (big.band == "red")).sum()


def test_syntax_error_in_the_middle_names_its_column():
    with pytest.raises(RuleError, match=r"syntax error at column 15"):
        compile_expression("days_past_due days")


def test_if_else_with_none_gives_missing_numbers(frame):
    values = compile_expression("if_else(dispute, None, days_past_due)").numbers(frame)
    assert np.isnan(values[1]) and values[[0, 2, 3]].tolist() == [0, 95, 200]


def test_categorical_text_columns_compare_like_text():
    cat = pd.DataFrame({"band": pd.Categorical(["red", "green", None], categories=["red", "yellow", "green"])})
    assert compile_expression("band == 'red'").mask(cat).tolist() == [True, False, False]
    assert compile_expression("band in ['green', 'yellow']").mask(cat).tolist() == [False, True, False]
    assert compile_expression("concat(band, '!')").evaluate(cat).tolist() == ["red!", "green!", "!"]
    with pytest.raises(RuleError, match="cannot compare"):
        compile_expression("band < 'x'").evaluate(cat)


def test_division_by_zero_is_missing_not_infinite(frame):
    zero = pd.DataFrame({"a": [2.0, 0.0, 3.0], "b": [0.0, 0.0, 1.5]})
    assert compile_expression("a / b").evaluate(zero).isna().tolist() == [True, True, False]
    assert compile_expression("a // 0").evaluate(zero).isna().all()
    assert compile_expression("a / b > 1").mask(zero).tolist() == [False, False, True]


def test_min_max_skip_missing_but_clip_keeps_it(frame):
    assert compile_expression("max(payment_ratio, 0.2)").evaluate(frame).tolist() == [1.0, 0.5, 0.2, 0.2]
    assert np.isnan(compile_expression("clip(payment_ratio, 0, 0.6)").evaluate(frame).iloc[2])
