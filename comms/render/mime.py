"""The bytes of an e-mail: RFC 5322 headers and a MIME multipart/alternative body, built directly.

``email.message.EmailMessage`` costs about a millisecond per message (policy objects, header folding,
quoted-printable in Python): more than the whole budget of a render. A collections e-mail has a fixed
shape (two UTF-8 parts, a dozen headers), so it is written here with string joins and C codecs:

* headers: printable ASCII that fits stays as it is (folded at spaces past 78 characters); anything else
  (Hebrew, Chinese, a quote, a line break) becomes RFC 2047 ``=?utf-8?b?...?=`` words of at most 75
  characters, one per folded line, so no line passes 78 characters and no header can be injected;
* bodies: ``8bit`` (UTF-8 as is, CRLF line ends) when every line is at most 998 octets, else base64 wrapped
  at 76; for servers without 8BITMIME (``seven_bit=True``) a part is 7bit when it is ASCII, else base64;
* the boundary is 96 random bits drawn after the bodies were rendered, so no body can contain it and no
  scan is needed.

Python's own parser reads every message back in the tests (headers decoded, both parts byte-identical).
"""

from __future__ import annotations

import binascii
import re
from datetime import datetime, timedelta
from email.utils import format_datetime

CRLF = "\r\n"
MAX_LINE = 78
MAX_OCTETS = 998
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_ENCODED_CHUNK = 39  # UTF-8 bytes per encoded word: 52 base64 chars + 12 of "=?utf-8?b??=" = 64, + "Reply-To: "


def _encoded_words(value: str) -> list[str]:
    """Split into =?utf-8?b?...?= words of at most 75 characters, after a space where one is near.

    A split right after an (encoded) space reads the same in every decoder: RFC 2047 decoders drop the
    folding white space between words, and Python's address parser, which keeps it, only doubles a space.
    """
    words: list[str] = []
    chunk = ""
    size = 0
    for ch in value:
        n = len(ch.encode("utf-8"))
        if size + n > _ENCODED_CHUNK and chunk:
            cut = chunk.rfind(" ") + 1
            if cut <= len(chunk) // 2:
                cut = len(chunk)
            words.append(_word(chunk[:cut]))
            chunk = chunk[cut:]
            size = len(chunk.encode("utf-8"))
        chunk += ch
        size += n
    if chunk:
        words.append(_word(chunk))
    return words


def _word(text: str) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(text.encode("utf-8"), newline=False).decode("ascii") + "?="


def _fold_words(name: str, words: list[str]) -> str:
    """'Name: w1 w2 ...' with a fold (CRLF + space) before a word that would pass 78 characters."""
    lines: list[str] = []
    line = name + ":"
    for i, w in enumerate(words):
        if i and len(line) + 1 + len(w) > MAX_LINE:
            lines.append(line)
            line = " " + w
        else:
            line = f"{line} {w}"
    lines.append(line)
    return CRLF.join(lines)


def unstructured(name: str, value: str) -> str:
    """A Subject-like header line (without the final CRLF); value is one line already."""
    if _PRINTABLE.fullmatch(value) and "=?" not in value:
        if len(name) + 2 + len(value) <= MAX_LINE:
            return f"{name}: {value}"
        words = value.split(" ")
        if all(len(w) < MAX_LINE - 2 for w in words) and all(words):
            return _fold_words(name, words)
    return _fold_words(name, _encoded_words(value))


def _phrase(display: str) -> list[str]:
    """Tokens of a display name: atoms, a quoted string (folded at its spaces) or encoded words."""
    if not display:
        return []
    if _ATOM_PHRASE.fullmatch(display) and "=?" not in display:
        return display.split(" ")
    if _PRINTABLE.fullmatch(display):
        tokens = [t.replace("\\", "\\\\").replace('"', '\\"') for t in display.split(" ")]
        tokens[0] = '"' + tokens[0]
        tokens[-1] += '"'
        if all(len(t) < MAX_LINE - 2 for t in tokens):
            return tokens
    return _encoded_words(display)


def address(name: str, display: str, addr: str) -> str:
    """'To: Display <addr>' with the display name as atoms, a quoted string or encoded words."""
    words = _phrase(re.sub(r"[\x00-\x20\x7f\x85\u2028\u2029]+", " ", display).strip(" "))
    return _fold_words(name, [*words, f"<{addr}>"]) if words else f"{name}: <{addr}>"


def header(name: str, value: str) -> str:
    """A structured header whose value is ASCII already (ids, URLs); refuses line breaks."""
    if "\r" in value or "\n" in value or not value.isascii():
        raise ValueError(f"header {name} must be one line of ASCII")
    return f"{name}: {value}"


def _lines_fit(data: bytes) -> bool:
    """Every line at most 998 octets (CR included, so a little stricter than RFC 5322).

    A longer line holds a newline-free stretch of 499 bytes starting at a multiple of 499; only those
    stretches are measured, so a typical message costs a few dozen ``find`` calls, not a split.
    """
    size = len(data)
    if size <= MAX_OCTETS:
        return True
    stride = MAX_OCTETS // 2
    for start in range(0, size, stride):
        if data.find(b"\n", start, start + stride) == -1 and start + stride <= size:
            line_start = data.rfind(b"\n", 0, start) + 1
            line_end = data.find(b"\n", start)
            if (size if line_end == -1 else line_end) - line_start > MAX_OCTETS:
                return False
    tail = size - (data.rfind(b"\n") + 1)
    return tail <= MAX_OCTETS


def _body(text: str, seven_bit: bool) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded bytes with CRLF line ends) for one UTF-8 part."""
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data = data.replace(b"\n", b"\r\n")
    if _lines_fit(data) and (not seven_bit or data.isascii()):
        return ("7bit" if seven_bit else "8bit"), data
    b64 = binascii.b2a_base64(data, newline=False)
    return "base64", b"\r\n".join([b64[i:i + 76] for i in range(0, len(b64), 76)])


_date_cache: tuple[int, str] = (-1, "")


def date_header(when: datetime) -> str:
    """RFC 5322 date of an aware datetime, cached per second (formatting one costs ~10 us)."""
    global _date_cache
    second = int(when.timestamp())
    cached = _date_cache
    if cached[0] == second and when.utcoffset() == timedelta(0):
        return cached[1]
    value = format_datetime(when)
    if when.utcoffset() == timedelta(0):
        _date_cache = (second, value)
    return value


def build(*, head: list[str], text: str, html: str, boundary: str, seven_bit: bool = False) -> bytes:
    """The whole message: header lines (already folded), then multipart/alternative text + html."""
    t_cte, t_data = _body(text, seven_bit)
    h_cte, h_data = _body(html, seven_bit)
    top = CRLF.join([*head, "MIME-Version: 1.0",
                     f'Content-Type: multipart/alternative; boundary="{boundary}"', "", ""])
    part = '--{b}\r\nContent-Type: text/{sub}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    return b"".join([
        top.encode("ascii"),
        part.format(b=boundary, sub="plain", cte=t_cte).encode("ascii"), t_data, b"\r\n",
        part.format(b=boundary, sub="html", cte=h_cte).encode("ascii"), h_data, b"\r\n",
        f"--{boundary}--\r\n".encode("ascii"),
    ])
