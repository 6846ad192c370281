"""Fast checks on Arrow string columns, done on the raw buffers so a clean column of millions costs
milliseconds: "does any cell start with a quote", "does any cell hold a control character", "does any
cell need trimming". Only a column that fails the quick look pays for the per-cell kernels.

Example: col = restore_cells(combine(raw.table["name"]))
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


CONTROL_RE = r"[\x00-\x1f\x7f\x{80}-\x{9f}]"


def combine(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array (large strings become plain strings when they fit). Copies: use sparingly."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_large_string(col.type):
        try:
            col = col.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowCapacityError):
            pass
    if pa.types.is_null(col.type):
        col = pa.nulls(len(col), pa.string())
    return col


def to_numpy(x) -> np.ndarray:
    """A numeric or boolean Arrow column (fill nulls first) as numpy."""
    if isinstance(x, pa.ChunkedArray):
        return x.to_numpy()
    return x.to_numpy(zero_copy_only=False)


def codes_of(indices) -> np.ndarray:
    """Dictionary indices as int64 numpy, -1 for null, without a per-element fill."""
    parts = []
    for arr in chunks(indices):
        width = arr.type.bit_width // 8
        raw = np.frombuffer(arr.buffers()[1], dtype=f"<i{width}")[arr.offset: arr.offset + len(arr)]
        out = raw.astype(np.int64)
        if arr.null_count:
            out[~arr.is_valid().to_numpy(zero_copy_only=False)] = -1
        parts.append(out)
    return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, np.int64)


def take_rows(col, rows: np.ndarray):
    """col.take(rows) without pyarrow concatenating every chunk first (which costs a full copy)."""
    if isinstance(col, pa.Array) or col.num_chunks <= 1:
        return (col if isinstance(col, pa.Array) else combine(col)).take(pa.array(rows, pa.int64()))
    rows = np.asarray(rows, dtype=np.int64)
    ascending = rows.size < 2 or bool(np.all(rows[1:] > rows[:-1]))
    if ascending and rows.size > len(col) // 2:  # most rows, in order: a filter copies sequentially
        if rows.size == len(col):
            return col
        mask = np.zeros(len(col), dtype=bool)
        mask[rows] = True
        return col.filter(pa.array(mask))
    order = None if ascending else np.argsort(rows, kind="stable")
    wanted = rows if ascending else rows[order]
    bounds = np.cumsum([0] + [len(c) for c in col.chunks])
    cuts = np.searchsorted(wanted, bounds)
    parts = [chunk.take(pa.array(wanted[cuts[i]:cuts[i + 1]] - bounds[i]))
             for i, chunk in enumerate(col.chunks) if cuts[i + 1] > cuts[i]]
    if order is None:
        return pa.chunked_array(parts, col.type)
    out = pa.concat_arrays(parts) if parts else pa.array([], col.type)
    back = np.empty(rows.size, dtype=np.int64)
    back[order] = np.arange(rows.size)
    return out.take(pa.array(back))


def patch_rows(col, rows: np.ndarray, values: pa.Array):
    """col with rows[i] replaced by values[i] (rows ascending); untouched chunks are not copied."""
    if not rows.size:
        return col
    values = combine(values).cast(col.type)
    parts, start, done = [], 0, 0
    for chunk in chunks(col):
        end = start + len(chunk)
        stop = int(np.searchsorted(rows, end))
        if stop > done:
            mask = np.zeros(len(chunk), dtype=bool)
            mask[rows[done:stop] - start] = True
            chunk = pc.replace_with_mask(chunk, pa.array(mask), values.slice(done, stop - done))
        parts.append(chunk)
        done, start = stop, end
    return pa.chunked_array(parts, col.type) if isinstance(col, pa.ChunkedArray) else parts[0]


def byte_in(values: np.ndarray, members) -> np.ndarray:
    """values (uint8) in members, through a 256-entry table (np.isin sorts; this does not)."""
    table = np.zeros(256, dtype=bool)
    table[np.asarray(list(members), dtype=np.uint8)] = True
    return table[values]


def chunks(col: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    if isinstance(col, pa.ChunkedArray):
        return col.chunks or [pa.array([], col.type)]
    return [col]


def _per_chunk(fn, col) -> np.ndarray:
    parts = [fn(c) for c in chunks(col)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _offsets_data(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    bufs = arr.buffers()
    dtype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=dtype)[arr.offset: arr.offset + len(arr) + 1] if bufs[1] \
        else np.zeros(len(arr) + 1, dtype=dtype)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if len(bufs) > 2 and bufs[2] is not None \
        else np.zeros(0, dtype=np.uint8)
    return offsets, data


def _valid(arr: pa.Array) -> np.ndarray | None:
    return np.asarray(arr.is_valid()) if arr.null_count else None


def _byte_lengths(arr: pa.Array) -> np.ndarray:
    return np.diff(_offsets_data(arr)[0])


def byte_lengths(col) -> np.ndarray:
    return _per_chunk(_byte_lengths, col)


def _edge_bytes(arr: pa.Array, last: bool) -> np.ndarray:
    offsets, data = _offsets_data(arr)
    if not data.size:
        return np.zeros(len(arr), dtype=np.uint8)
    lengths = np.diff(offsets)
    at = (offsets[1:] - 1) if last else offsets[:-1]
    out = data[np.clip(at, 0, data.size - 1)]
    out[lengths == 0] = 0  # empty (and null) cells; a non-empty null slot only costs a slow path later
    return out


def first_bytes(col) -> np.ndarray:
    """The first byte of every cell (0 for empty or null cells)."""
    return _per_chunk(lambda a: _edge_bytes(a, False), col)


def last_bytes(col) -> np.ndarray:
    return _per_chunk(lambda a: _edge_bytes(a, True), col)


def _control_rows(arr: pa.Array) -> np.ndarray:
    """Rows of one chunk holding a C0/C1 control character or DEL, found from the bytes alone."""
    offsets, data = _offsets_data(arr)
    lo, hi = (int(offsets[0]), int(offsets[-1])) if len(arr) else (0, 0)
    body = data[lo:hi]
    if not body.size:
        return np.zeros(0, np.int64)
    hits = np.flatnonzero((body < 0x20) | (body == 0x7F))
    lead = np.flatnonzero(body[:-1] == 0xC2)
    if lead.size:
        c1 = lead[(body[lead + 1] >= 0x80) & (body[lead + 1] <= 0x9F)]
        hits = np.union1d(hits, c1) if c1.size else hits
    if not hits.size:
        return np.zeros(0, np.int64)
    rows = np.unique(np.searchsorted(offsets, hits + lo, side="right") - 1)
    valid = _valid(arr)
    return rows[valid[rows]] if valid is not None else rows


def rows_with_other_bytes(col, allowed: bytes) -> np.ndarray:
    """Rows (ascending) holding any byte not in ``allowed``, from one scan of each chunk's bytes."""
    table = np.ones(256, dtype=bool)
    table[np.frombuffer(allowed, dtype=np.uint8)] = False
    out, start = [], 0
    for chunk in chunks(col):
        offsets, data = _offsets_data(chunk)
        if len(chunk) and data.size:
            lo, hi = int(offsets[0]), int(offsets[-1])
            hits = np.flatnonzero(table[data[lo:hi]])
            if hits.size:
                out.append(np.unique(np.searchsorted(offsets, hits + lo, side="right") - 1) + start)
        start += len(chunk)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def odd_number_rows(col, max_decimals: int | None) -> np.ndarray:
    """Rows (ascending) that are not plain numbers ``[+-]digits[.digits]`` (at most ``max_decimals``
    after the point; None: any), judged from the bytes: other characters, two points, a sign that is not
    first, too many decimals. What passes is safe to cast in one go."""
    allowed = np.zeros(256, dtype=bool)
    allowed[np.frombuffer(b"0123456789.+-", dtype=np.uint8)] = True
    out, start = [], 0
    for chunk in chunks(col):
        offsets, data = _offsets_data(chunk)
        if len(chunk) and data.size:
            lo, hi = int(offsets[0]), int(offsets[-1])
            body = data[lo:hi]
            bad = [np.flatnonzero(~allowed[body])]
            dots = np.flatnonzero(body == 0x2E)
            if dots.size:
                owner = np.searchsorted(offsets, dots + lo, side="right") - 1
                twice = np.flatnonzero(owner[1:] == owner[:-1])
                bad.append(dots[twice])
                if max_decimals is not None:
                    decimals = offsets[owner + 1] - (dots + lo) - 1
                    bad.append(dots[decimals > max_decimals])
            signs = np.flatnonzero((body == 0x2B) | (body == 0x2D))
            if signs.size:
                owner = np.searchsorted(offsets, signs + lo, side="right") - 1
                bad.append(signs[offsets[owner] != signs + lo])
            hits = np.concatenate(bad)
            if hits.size:
                out.append(np.unique(np.searchsorted(offsets, hits + lo, side="right") - 1) + start)
        start += len(chunk)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def control_mask(col) -> np.ndarray:
    """Which cells hold a control character (tab, newline, NUL, DEL, C1...)."""
    out = np.zeros(len(col), dtype=bool)
    start = 0
    for chunk in chunks(col):
        out[_control_rows(chunk) + start] = True
        start += len(chunk)
    return out


def _second_bytes(arr: pa.Array) -> np.ndarray:
    offsets, data = _offsets_data(arr)
    if not data.size:
        return np.zeros(len(arr), dtype=np.uint8)
    out = data[np.clip(offsets[:-1] + 1, 0, data.size - 1)]
    out[np.diff(offsets) < 2] = 0
    return out


_TRIGGER_BYTES = np.frombuffer(b"=+-@\t\r", dtype=np.uint8)


def restore_cells(col, firsts: np.ndarray | None = None):
    """Undo comms.csvsafe's neutralization (a quote before = + - @ tab CR), only where it was applied;
    the same result as csvsafe.restore_array, touching only those cells."""
    firsts = first_bytes(col) if firsts is None else firsts
    quoted = firsts == ord("'")
    if not len(col) or not quoted.any():
        return col
    quoted &= byte_in(_per_chunk(_second_bytes, col), _TRIGGER_BYTES)
    rows = np.flatnonzero(quoted)
    if rows.size == len(col) - col.null_count:  # every cell was neutralized (a phone column, say)
        return pc.utf8_slice_codeunits(col, 1)
    if rows.size > len(col) // 2:
        return pc.if_else(pa.array(quoted), pc.utf8_slice_codeunits(col, 1), col)
    return patch_rows(col, rows, pc.utf8_slice_codeunits(take_rows(col, rows), 1))


_LEADING = np.array([0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0xC2, 0xE2, 0xE3], dtype=np.uint8)
_TRAILING = np.array([0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0xA0, 0x80, 0xAF, 0x85], dtype=np.uint8)
_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C]] = True
_MB_LEAD = np.zeros(256, dtype=bool)     # first bytes of NBSP, NEL, U+2000-200A, U+202F, U+205F, U+3000
_MB_LEAD[[0xC2, 0xE2, 0xE3]] = True
_MB_TRAIL = np.zeros(256, dtype=bool)    # their last bytes
_MB_TRAIL[[0xA0, 0x85, 0xAF, 0x9F] + list(range(0x80, 0x8B))] = True


_EDGE_FIX, _EDGE_TOKEN, _EDGE_UNICODE = 1, 2, 4  # flags of a (first byte, last byte) pair


class _Tokens:
    """Null tokens as lookup tables: which first bytes and which byte lengths can be one."""

    def __init__(self, tokens: tuple[str, ...]):
        self.first = np.zeros(256, dtype=bool)
        self.sizes = np.zeros(66, dtype=bool)
        for t in tokens:
            raw = t.encode()
            if 0 < len(raw) < 65:
                self.first[raw[0]] = True
                self.sizes[len(raw)] = True
        self.values = pa.array(list(tokens), pa.string()) if tokens else None
        self._edges: dict[bytes, np.ndarray] = {}

    def edge_flags(self, first_lut: np.ndarray) -> np.ndarray:
        """One table over every (first byte << 8 | last byte): a cell is a candidate already (first byte
        in ``first_lut``, or an ASCII space last), may be a null token, or may have a Unicode space at an
        edge. One lookup per cell instead of five."""
        key = first_lut.tobytes()
        if key not in self._edges:
            first, last = np.arange(256)[:, None], np.arange(256)[None, :]
            flags = ((first_lut[first] | _ASCII_SPACE[last]) * _EDGE_FIX | self.first[first] * _EDGE_TOKEN
                     | (_MB_LEAD[first] | _MB_TRAIL[last]) * _EDGE_UNICODE)
            self._edges[key] = flags.astype(np.uint8).ravel()
        return self._edges[key]


def _edge_candidates(data: np.ndarray, offsets: np.ndarray, first_lut: np.ndarray, tokens: _Tokens) -> np.ndarray:
    """Cells whose first byte is in ``first_lut``, that may be a null token, or that start or end with
    white space (ASCII, or a Unicode space checked on its full byte sequence: a Cyrillic 'р' (D1 80)
    is not one)."""
    starts, ends = offsets[:-1], offsets[1:]
    f0 = np.take(data, starts, mode="clip")
    l0 = np.take(data, ends - 1, mode="clip")
    flags = tokens.edge_flags(first_lut)[(f0.astype(np.uint16) << 8) | l0]
    fix = (flags & _EDGE_FIX).view(bool)
    maybe_token = np.flatnonzero(flags & _EDGE_TOKEN)
    if maybe_token.size:
        sizes = np.minimum(ends[maybe_token] - starts[maybe_token], 65)
        fix[maybe_token[tokens.sizes[sizes]]] = True
    maybe = np.flatnonzero(flags & _EDGE_UNICODE)
    if maybe.size:
        s, e = starts[maybe], ends[maybe]
        n = e - s

        def at(i):
            return np.take(data, i, mode="clip")
        a, f1, f2 = f0[maybe], at(s + 1), at(s + 2)
        z, l1, l2 = l0[maybe], at(e - 2), at(e - 3)
        lead = (((a == 0xC2) & ((f1 == 0xA0) | (f1 == 0x85)) & (n >= 2))
                | ((a == 0xE2) & (f1 == 0x80) & ((f2 <= 0x8A) | (f2 == 0xAF)) & (n >= 3))
                | ((a == 0xE2) & (f1 == 0x81) & (f2 == 0x9F) & (n >= 3))
                | ((a == 0xE3) & (f1 == 0x80) & (f2 == 0x80) & (n >= 3)))
        trail = (((l1 == 0xC2) & ((z == 0xA0) | (z == 0x85)) & (n >= 2))
                 | ((l2 == 0xE2) & (l1 == 0x80) & ((z <= 0x8A) | (z == 0xAF)) & (n >= 3))
                 | ((l2 == 0xE2) & (l1 == 0x81) & (z == 0x9F) & (n >= 3))
                 | ((l2 == 0xE3) & (l1 == 0x80) & (z == 0x80) & (n >= 3)))
        fix[maybe[lead | trail]] = True
    return fix


def trim(col):
    """Strip surrounding white space (only in cells that may have some); a cell left empty becomes null."""
    if not len(col):
        return col
    rows = np.flatnonzero(byte_in(first_bytes(col), _LEADING) | byte_in(last_bytes(col), _TRAILING))
    if rows.size > len(col) // 4:
        col = pc.utf8_trim_whitespace(col)
    elif rows.size:
        col = patch_rows(col, rows, pc.utf8_trim_whitespace(take_rows(col, rows)))
    lengths = byte_lengths(col)
    empty = np.flatnonzero(lengths == 0)
    if empty.size and col.null_count < empty.size:
        valid = to_numpy(col.is_valid())
        empty = empty[valid[empty]]
        col = patch_rows(col, empty, pa.nulls(empty.size, pa.string()))
    return col


def clean_cells(col, tokens: tuple[str, ...] = ()):
    """The one pass every source column gets: undo comms.csvsafe's formula neutralization (a quote before
    = + - @ tab CR), strip surrounding white space, and turn null tokens ("NA", ...) and empty cells into
    nulls. Candidates come from each cell's first and last byte and its length (lookup tables over the
    offsets, no per-cell kernel); the candidates of the whole column are processed together, and only the
    chunks holding a cell that really changes are rewritten, so a clean column of millions is neither slow
    nor copied."""
    tokens_lut = _Tokens(tokens)
    first_candidate = _ASCII_SPACE.copy()
    first_candidate[0x27] = True
    rows = _rows_by_chunk(lambda chunk: _clean_candidates(chunk, first_candidate, tokens_lut), col)
    if not rows.size:
        return col
    if rows.size > len(col) // 4:  # most cells (a neutralized phone column, say): all of them in one go
        return _clean_values(col, tokens_lut)
    before = combine(take_rows(col, rows))
    after = _clean_values(before, tokens_lut)
    if after is before:
        return col
    differ = ~to_numpy(pc.fill_null(pc.equal(before, after), False))
    return patch_rows(col, rows[differ], after.filter(pa.array(differ)))


def _rows_by_chunk(rows_of, col) -> np.ndarray:
    """``rows_of(chunk)`` (positions in the chunk) for every chunk, as ascending positions in ``col``."""
    out, start = [], 0
    for chunk in chunks(col):
        rows = rows_of(chunk)
        if rows.size:
            out.append(rows + start)
        start += len(chunk)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _clean_candidates(chunk: pa.Array, first_lut: np.ndarray, tokens: _Tokens) -> np.ndarray:
    """Valid cells of one chunk that clean_cells may change: first byte in ``first_lut``, white space at
    an edge, maybe a null token, or "" (a null has no bytes either, so "" only counts when there is one)."""
    if not len(chunk) or chunk.null_count == len(chunk):
        return np.zeros(0, np.int64)
    offsets, data = _offsets_data(chunk)
    if not data.size:
        return np.flatnonzero(to_numpy(chunk.is_valid()))
    fix = _edge_candidates(data, offsets, first_lut, tokens)
    empty = np.diff(offsets) == 0
    if np.count_nonzero(empty) > chunk.null_count:
        fix |= empty
    else:
        fix &= ~empty
    valid = _valid(chunk)
    if valid is not None:
        fix &= valid
    return np.flatnonzero(fix)


def _candidates(arr: pa.Array, tokens: _Tokens) -> np.ndarray:
    """Rows that may be a null token, have white space at an edge, or are "" (not null)."""
    offsets, data = _offsets_data(arr)
    if not data.size:
        fix = np.ones(len(arr), dtype=bool)
    else:
        fix = _edge_candidates(data, offsets, _ASCII_SPACE, tokens)
        fix |= np.diff(offsets) == 0
    valid = _valid(arr)
    return np.flatnonzero(fix & valid if valid is not None else fix)


def _clean_values(values, tokens: _Tokens):
    """``values`` restored, trimmed and nulled; ``values`` itself when no cell changes."""
    sub = restore_cells(values)
    rest = _rows_by_chunk(lambda chunk: _candidates(chunk, tokens), sub)
    if rest.size:
        part = combine(take_rows(sub, rest))
        new = pc.utf8_trim_whitespace(part)
        drop = pc.equal(new, "")
        if tokens.values is not None:
            drop = pc.or_(drop, pc.is_in(new, value_set=tokens.values))
        new = pc.if_else(pc.fill_null(drop, False), pa.scalar(None, pa.string()), new)
        differ = ~to_numpy(pc.fill_null(pc.equal(part, new), False))
        if differ.any():
            sub = patch_rows(sub, rest[differ], new.filter(pa.array(differ)))
    return sub


def quoted(values: pa.Array, limit: int = 40) -> pa.Array:
    """Cells as they appear in a reason: 'value', cut to ``limit`` characters."""
    cut = pc.utf8_slice_codeunits(values, 0, limit)
    long = pc.greater(pc.utf8_length(values), limit)
    cut = pc.if_else(long, pc.binary_join_element_wise(cut, "…", ""), cut)
    return pc.binary_join_element_wise("'", pc.fill_null(cut, ""), "'", "")
