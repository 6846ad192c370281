"""What a letter may load: data: URLs and files under media/, nothing else.

Templates are edited by marketing and rendered for every customer, so WeasyPrint's default fetcher (which
reads any ``file://`` path and any ``http(s)://`` URL) would let a template embed ``/etc/passwd`` as a PDF
attachment or make the render host call a cloud metadata address. This fetcher refuses every other scheme,
every path outside the media folder (after resolving symlinks and ``..``), and anything larger than
``max_bytes``; it never opens a network connection. Refusals are remembered (bounded) for lint and tests.
"""

from __future__ import annotations

import base64
import mimetypes
from collections import deque
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse

MAX_BYTES = 8 * 1024 * 1024


class BlockedURL(ValueError):
    """A template asked for something outside data: URLs and the media folder."""


class MediaFetcher(URLFetcher):
    """A WeasyPrint URL fetcher limited to ``data:`` URLs and regular files inside ``media_dir``."""

    def __init__(self, media_dir: Path, *, max_bytes: int = MAX_BYTES):
        super().__init__(timeout=1, allowed_protocols=("data", "file"), allow_redirects=False,
                         fail_on_errors=False)
        self.root = Path(media_dir).resolve()
        self.max_bytes = max_bytes
        self.blocked: deque[str] = deque(maxlen=64)
        self.base_url = self.root.as_uri() + "/"

    def _refuse(self, url: str, why: str) -> BlockedURL:
        self.blocked.append(url[:200])
        return BlockedURL(f"not allowed in a letter ({why}): {url[:80]}")

    def fetch(self, url, headers=None):
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return self._data(url)
        if scheme == "file":
            return self._file(url)
        raise self._refuse(url, "only media/ files and data: URLs")

    def _data(self, url: str) -> URLFetcherResponse:
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise self._refuse(url, "malformed data: URL")
        if len(payload) > self.max_bytes * 4 // 3 + 4:
            raise self._refuse(url, "too large")
        params = header.split(";")
        mime = params[0] or "text/plain"
        body = base64.b64decode(payload) if "base64" in params[1:] else unquote_to_bytes(payload)
        return URLFetcherResponse(url, body, {"Content-Type": mime})

    def _file(self, url: str) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise self._refuse(url, "remote file")
        path = Path(url2pathname(parts.path)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise self._refuse(url, "outside media/")
        if path.stat().st_size > self.max_bytes:
            raise self._refuse(url, "too large")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": mime})
