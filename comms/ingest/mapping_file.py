"""Reading and checking a mapping file (YAML); the format itself is documented in mappings/README.md.

Every problem is one MappingError line naming the file: unknown keys, a field that is not canonical
(with a did-you-mean), an unknown currency/country/locale/zone as a constant, an expression that does
not parse, an unknown fill generator. YAML's 1.1 habit of reading ``yes``/``no``/``on``/``off`` as
booleans is switched off, so ``values: {no: ...}`` means the text "no".

Example: mapping = load_mapping("mappings/german_credit.yaml")
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml

from ..errors import MappingError, RuleError
from ..models import FEATURES, FIELDS
from .dates import date_regex
from .fake import GENERATORS
from .mapping import DEFAULT_NA, FillSpec, Mapping, default_mapping
from .problems import Formats
from .readers import ReadOptions, cell_text
from .validate import FALSE_WORDS, TRUE_WORDS, check_code

TOP_KEYS = ("name", "description", "layout", "read", "columns", "values", "constants", "derive", "fill", "extra")
READ_KEYS = ("delimiter", "encoding", "decimal", "thousands", "date_format", "sheet", "na_values", "format")
OUTPUT_NAMES = set(FIELDS) | set(FEATURES) | {"aging_bucket", "payment_ratio", "tenure_months", "invoice_count",
                                              "max_invoice_amount"}
SNAKE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")



class _Loader(yaml.SafeLoader):
    """YAML without the 1.1 surprise of yes/no/on/off turning into booleans (``values: {no: ...}``)."""


_Loader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:bool"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))



def load_mapping(path: str | Path) -> Mapping:
    """Parse and check a mapping file; every problem is one MappingError line naming the file."""
    path = Path(path)
    where = f"mapping {path}"
    if not path.is_file():
        raise MappingError(f"{where}: no such file")
    try:
        doc = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_Loader)
    except UnicodeDecodeError:
        raise MappingError(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise MappingError(f"{where}: not valid YAML{at} ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(doc, dict):
        raise MappingError(f"{where}: must be a YAML mapping of keys ({', '.join(TOP_KEYS)})")
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise MappingError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS)})")

    def section(key: str) -> dict:
        value = doc.get(key) or {}
        if not isinstance(value, dict):
            raise MappingError(f"{where}: {key} must be a mapping of name: value")
        return {str(k): v for k, v in value.items()}

    def canonical(key: str, name: str, allow_extra: bool = False) -> None:
        if name in FIELDS or (allow_extra and name in extra):
            return
        close = difflib.get_close_matches(name, list(FIELDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise MappingError(f"{where}: {key}: {name!r} is not a canonical field{hint}")

    layout = doc.get("layout")
    if layout not in (None, "customer", "invoice"):
        raise MappingError(f"{where}: layout must be customer or invoice, not {layout!r}")
    read = section("read")
    for k in read:
        if k not in READ_KEYS:
            raise MappingError(f"{where}: read: unknown key {k!r} (known: {', '.join(READ_KEYS)})")
    na = read.get("na_values", DEFAULT_NA)
    if not isinstance(na, (list, tuple)):
        raise MappingError(f"{where}: read.na_values must be a list")
    if read.get("date_format"):
        try:
            date_regex(str(read["date_format"]))
        except MappingError as exc:
            raise MappingError(f"{where}: read.{exc}") from None
    extra = section("extra")
    for ename, src in extra.items():
        if not SNAKE.match(ename) or ename in OUTPUT_NAMES:
            raise MappingError(f"{where}: extra {ename!r}: use a snake_case name that is not a canonical field "
                               f"or feature")
        if src is not None and not isinstance(src, str):
            raise MappingError(f"{where}: extra {ename}: give the source column name as text")
    columns = section("columns")
    for fname, src in columns.items():
        canonical("columns", fname)
        if not isinstance(src, (str, int)):
            raise MappingError(f"{where}: columns: {fname} must name one source column")
    values = section("values")
    for fname, vmap in values.items():
        canonical("values", fname, allow_extra=True)
        if not isinstance(vmap, dict):
            raise MappingError(f"{where}: values: {fname} must map source values to canonical values")
    constants = {}
    for fname, value in section("constants").items():
        canonical("constants", fname)
        if fname in columns:
            raise MappingError(f"{where}: {fname} is both a column and a constant; keep one")
        constants[fname] = _check_constant(where, fname, value)
    derive = {}
    from ..segment.expr import compile_expression
    for fname, text in section("derive").items():
        if fname not in FIELDS and not (SNAKE.match(fname) and fname not in OUTPUT_NAMES):
            canonical("derive", fname)
        close = difflib.get_close_matches(fname, list(FIELDS), n=1, cutoff=0.85)
        if fname not in FIELDS and close and fname not in extra:
            raise MappingError(f"{where}: derive: {fname!r} is not a canonical field; did you mean {close[0]!r}? "
                               f"(list it under extra: to keep it as an extra column)")
        if fname in constants:
            raise MappingError(f"{where}: {fname} is both a constant and derived; keep one")
        try:
            derive[fname] = compile_expression(str(text), where=f"{where}: derive {fname}")
        except RuleError as exc:
            raise MappingError(str(exc)) from None
    fill = None
    if doc.get("fill") is not None:
        fill = _fill_spec(where, doc["fill"], constants)
    return Mapping(
        name=str(doc.get("name") or path.stem), path=path, layout=layout,
        read=ReadOptions(delimiter=_opt(read.get("delimiter")), encoding=_opt(read.get("encoding")),
                         sheet=read.get("sheet"), format=_opt(read.get("format"))),
        formats=Formats(decimal=_opt(read.get("decimal")), thousands=_opt(read.get("thousands")),
                        date_format=_opt(read.get("date_format"))),
        na_values=tuple(str(v) for v in na if v is not None and str(v) != ""),
        columns={k: str(v) for k, v in columns.items()},
        values={k: {str(cell_text(s) if not isinstance(s, str) else s): (cell_text(t) if t is not None else None)
                    for s, t in v.items()} for k, v in values.items()},
        constants=constants, derive=derive, fill=fill,
        extra={k: str(v) for k, v in extra.items() if v is not None})


def _opt(value) -> str | None:
    return None if value is None else str(value)


def _check_constant(where: str, fname: str, value) -> str:
    text = cell_text(value)
    if text is None:
        raise MappingError(f"{where}: constants: {fname} has no value")
    kind = FIELDS[fname].kind
    if kind in ("country", "locale", "timezone", "currency"):
        normal = check_code(kind, [text])[0]
        if normal is None:
            raise MappingError(f"{where}: constants: {fname} {text!r} is not a known {kind}")
        return normal
    if kind in ("bool", "outcome") and text.lower() not in TRUE_WORDS + FALSE_WORDS:
        raise MappingError(f"{where}: constants: {fname} must be true or false, not {text!r}")
    if kind in ("money", "number", "int") and not re.match(r"^[+-]?\d+(\.\d+)?$", text):
        raise MappingError(f"{where}: constants: {fname} must be a number, not {text!r}")
    return text


def _fill_spec(where: str, spec, constants: dict) -> FillSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), dict):
        raise MappingError(f"{where}: fill needs seed: N and fields: {{field: generator}}")
    seed = spec.get("seed", 0)
    if not isinstance(seed, int):
        raise MappingError(f"{where}: fill.seed must be a whole number")
    fields = {}
    for target, generator in spec["fields"].items():
        generator = str(generator)
        if generator not in GENERATORS:
            raise MappingError(f"{where}: fill: unknown generator {generator!r} for {target} "
                               f"(known: {', '.join(GENERATORS)})")
        fills = GENERATORS[generator]
        if target not in fills and not (target == "address" and generator == "fake_address"):
            raise MappingError(f"{where}: fill: {generator} fills {', '.join(fills)}, not {target}")
        fields[str(target)] = generator
    return FillSpec(seed, fields)


def as_mapping(mapping: Mapping | str | Path | None) -> Mapping:
    """A Mapping from a Mapping, a path to a mapping file, or None (the file's own column names)."""
    if mapping is None:
        return default_mapping()
    return mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
