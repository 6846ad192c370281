"""The print batch of a campaign: one merged PDF in print order and a manifest a print-and-mail house loads.

Order: paper (so the printer changes stock once), then country and postal code (postal presorting), then
customer id. With ``duplex`` every letter starts on a new sheet: a letter with an odd number of pages is
followed by a blank back page. The manifest has one row per letter: customer id, first page in the print
file, pages, sheets, paper, country, the address lines as they show in the envelope window, and the
SHA-256 of the letter's own PDF (the archived record of what was sent).

The merged file is written as it goes, one letter at a time (read with pypdf, objects renumbered and
appended), so memory stays flat however large the campaign.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.generic import DictionaryObject, NameObject, NumberObject, StreamObject

from ...csvsafe import write_rows
from .paper import POINTS, paper_for

_REF = re.compile(rb"\((?:\\.|[^\\()])*\)|(\d+) (\d+) R\b", re.S)
_POSTAL = re.compile(r"\b\d[\dA-Z]*(?:[- ]\d[\dA-Z]*)?\b")
ADDRESS_COLUMNS = 6
MANIFEST_HEADER = ["customer_id", "first_page", "pages", "sheets", "paper", "country",
                   *[f"address_line_{i}" for i in range(1, ADDRESS_COLUMNS + 1)], "sha256"]


def postal_code(customer: dict[str, Any]) -> str:
    """The postal code for presorting: ``customer["postal_code"]`` when the context has it, else the first
    number-like token of the last address line that has one ("20121 Milano MI", "Springfield, IL 62704")."""
    if customer.get("postal_code"):
        return str(customer["postal_code"])
    for line in reversed(list(customer.get("address_lines") or ())):
        match = _POSTAL.search(str(line))
        if match:
            return match.group(0)
    return ""


def print_order(contexts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Contexts sorted as the print batch wants them: paper, country, postal code, customer id."""
    def key(context):
        customer = context["customer"]
        return (paper_for(customer.get("country")), str(customer.get("country") or ""), postal_code(customer),
                str(customer["id"]))
    return sorted(contexts, key=key)


def _dictionary_bytes(obj, length: int | None = None) -> bytes:
    out = io.BytesIO()
    if length is not None:
        obj = DictionaryObject(obj)
        obj[NameObject("/Length")] = NumberObject(length)
    DictionaryObject.write_to_stream(obj, out)
    return out.getvalue()


class PrintBatch:
    """Appends letters to ``<out_dir>/letters.pdf`` and rows to ``<out_dir>/manifest.csv``; use as a context
    manager (the PDF's page tree and cross-reference table are written on exit)."""

    def __init__(self, out_dir: Path, *, duplex: bool = False, name: str = "letters"):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.pdf_path = self.out_dir / f"{name}.pdf"
        self.manifest_path = self.out_dir / "manifest.csv"
        self.duplex = duplex
        self.rows: list[list[Any]] = []
        self._pages: list[int] = []
        self._offsets: dict[int, int] = {}
        self._next = 3          # 1: page tree, 2: catalog
        self._blank_contents: int | None = None

    def __enter__(self) -> "PrintBatch":
        self._file = self.pdf_path.open("wb")
        self._write(b"%PDF-1.7\n%\xf0\x9f\x96\xa4\n")
        return self

    def _write(self, data: bytes) -> None:
        self._position = getattr(self, "_position", 0) + len(data)
        self._file.write(data)

    def _object(self, number: int, data: bytes) -> None:
        self._offsets[number] = self._position
        self._write(b"%d 0 obj\n" % number + data + b"\nendobj\n")

    def _number(self) -> int:
        self._next += 1
        return self._next - 1

    def add(self, letter, context: dict[str, Any]) -> None:
        """Append one letter (a Letter with .pdf, .pages, .paper, .sha256) and its manifest row."""
        first_page = len(self._pages) + 1
        reader = PdfReader(io.BytesIO(letter.pdf))
        pages = [page.indirect_reference.idnum for page in reader.pages]
        parent = reader.trailer["/Root"]["/Pages"].indirect_reference.idnum
        mapping = {parent: 1}
        order: list[int] = []
        queue = list(pages)
        for number in pages:
            mapping[number] = self._number()
            order.append(number)
        parts: dict[int, tuple[bytes, bytes | None]] = {}
        while queue:
            number = queue.pop()
            obj = reader.get_object(number)
            if isinstance(obj, StreamObject):
                parts[number] = (_dictionary_bytes(obj, len(obj._data)), obj._data)
            elif isinstance(obj, DictionaryObject):
                parts[number] = (_dictionary_bytes(obj), None)
            else:
                out = io.BytesIO()
                obj.write_to_stream(out)
                parts[number] = (out.getvalue(), None)
            for match in _REF.finditer(parts[number][0]):
                if match.group(1) is not None and int(match.group(1)) not in mapping:
                    ref = int(match.group(1))
                    mapping[ref] = self._number()
                    order.append(ref)
                    queue.append(ref)

        def renumber(match: re.Match) -> bytes:
            return match.group(0) if match.group(1) is None else b"%d 0 R" % mapping[int(match.group(1))]

        for number in order:
            head, body = parts[number]
            data = _REF.sub(renumber, head)
            if body is not None:
                data += b"\nstream\n" + body + b"\nendstream"
            self._object(mapping[number], data)
        self._pages.extend(mapping[n] for n in pages)
        if self.duplex and letter.pages % 2:
            self._blank(letter.paper)
        customer = context["customer"]
        lines = [customer["name"], *customer.get("address_lines", ())][:ADDRESS_COLUMNS]
        sheets = -(-letter.pages // 2) if self.duplex else letter.pages
        self.rows.append([letter.customer_id or customer["id"], first_page, letter.pages, sheets, letter.paper,
                          customer.get("country", ""), *lines, *[""] * (ADDRESS_COLUMNS - len(lines)),
                          letter.sha256])

    def _blank(self, paper: str) -> None:
        if self._blank_contents is None:
            self._blank_contents = self._number()
            self._object(self._blank_contents, b"<</Length 0>>\nstream\n\nendstream")
        width, height = POINTS.get(paper, POINTS["A4"])
        number = self._number()
        self._object(number, b"<</Type /Page /Parent 1 0 R /MediaBox [0 0 %s %s] /Contents %d 0 R "
                             b"/Resources <<>>>>" % (str(width).encode(), str(height).encode(),
                                                     self._blank_contents))
        self._pages.append(number)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # never leave a partial print file that could reach a printer
            self._file.close()
            self.pdf_path.unlink(missing_ok=True)
            return
        kids = b" ".join(b"%d 0 R" % n for n in self._pages)
        self._object(1, b"<</Type /Pages /Count %d /Kids [%s]>>" % (len(self._pages), kids))
        self._object(2, b"<</Type /Catalog /Pages 1 0 R>>")
        xref_at = self._position
        size = self._next
        rows = [b"%010d 00000 n \n" % self._offsets[n] if n in self._offsets else b"0000000000 65535 f \n"
                for n in range(1, size)]
        file_id = hashlib.md5(repr((len(self._pages), self._position)).encode(),
                              usedforsecurity=False).hexdigest().encode()
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % size + b"".join(rows))
        self._write(b"trailer\n<</Size %d /Root 2 0 R /ID [<%s><%s>]>>\nstartxref\n%d\n%%%%EOF\n"
                    % (size, file_id, file_id, xref_at))
        self._file.close()
        write_rows(self.manifest_path, MANIFEST_HEADER, self.rows)


def write_print_batch(letters_with_contexts: Iterable[tuple[Any, dict[str, Any]]], out_dir: Path,
                      duplex: bool = False) -> tuple[Path, Path]:
    """Merge letters (each with its context) into one print file in print order, plus the manifest.
    Returns (pdf_path, manifest_path)."""
    items = list(letters_with_contexts)
    position = {id(context): i for i, (_, context) in enumerate(items)}
    ordered = print_order([context for _, context in items])
    with PrintBatch(Path(out_dir), duplex=duplex) as batch:
        for context in ordered:
            letter, _ = items[position[id(context)]]
            batch.add(letter, context)
    return batch.pdf_path, batch.manifest_path
