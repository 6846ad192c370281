"""A local HTTP server that speaks SendGrid's ``POST /v3/mail/send``, for tests and benchmarks.

It checks what SendGrid checks (the API key, the JSON, personalizations, from, subject, content with the
plain-text part first, string-valued custom_args and headers, reserved headers, categories, sizes) and
answers the way SendGrid answers: 202 with ``X-Message-Id``, 400 with ``{"errors": [...]}``, 401 for a bad
key. On demand it answers 429 with ``X-RateLimit-Reset`` or 5xx, or answers slowly, to test clients. Like
the real service, it accepts a recipient name with an unquoted comma or semicolon and then drops that
message (it lands in ``dropped``, not in ``accepted``).

    with FakeSendGrid(api_key="SG.test") as fake:
        backend = SendGridBackend("SG.test", host=fake.url)
        ...
        fake.rate_limit_next(reset_in=1)     # next answer: 429 until now + 1 s
        fake.fail_next(500, times=2)         # next two answers: 500
        fake.accepted                         # payloads of the messages it took, in order

From a shell (prints the URL, serves until interrupted): ``python -m comms.deliver.fake_sendgrid``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESERVED_HEADERS = frozenset(h.lower() for h in (
    "x-sg-id", "x-sg-eid", "received", "dkim-signature", "Content-Type", "Content-Transfer-Encoding", "To",
    "From", "Subject", "Reply-To", "CC", "BCC"))
MAX_BYTES = 30 * 1024 * 1024
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")


def _error(field: str | None, message: str) -> dict:
    return {"field": field, "message": message, "help": None}


def _check_address(value, field: str, errors: list) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str) \
            or not _EMAIL.fullmatch(value["email"]):
        errors.append(_error(f"{field}.email", "Does not contain a valid address."))
    elif "name" in value and not isinstance(value["name"], str):
        errors.append(_error(f"{field}.name", "Invalid type. Expected: string."))


def _check_strings(value, field: str, errors: list, limit: int | None = None) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        errors.append(_error(field, "Invalid type. Expected: object with string values."))
    elif limit and len(json.dumps(value)) > limit:
        errors.append(_error(field, f"The {field} must be less than {limit} bytes."))


def validate(payload) -> list[dict]:
    """The errors SendGrid would answer with (empty: acceptable)."""
    errors: list[dict] = []
    if not isinstance(payload, dict):
        return [_error(None, "Bad Request: the body must be a JSON object")]
    pers = payload.get("personalizations")
    if not isinstance(pers, list) or not pers:
        errors.append(_error("personalizations", "The personalization block is required with at least one."))
        pers = []
    elif len(pers) > 1000:
        errors.append(_error("personalizations", "The personalization block is limited to 1000."))
    for i, p in enumerate(pers):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            errors.append(_error(f"personalizations.{i}.to", "The to array is required for all personalization "
                                 "objects, and must have at least one email object with a valid address."))
            continue
        for j, addr in enumerate(to):
            _check_address(addr, f"personalizations.{i}.to.{j}", errors)
        if "custom_args" in p:
            _check_strings(p["custom_args"], f"personalizations.{i}.custom_args", errors, 10_000)
        if "subject" in p and not isinstance(p["subject"], str):
            errors.append(_error(f"personalizations.{i}.subject", "Invalid type. Expected: string."))
    _check_address(payload.get("from"), "from", errors)
    if "reply_to" in payload:
        _check_address(payload["reply_to"], "reply_to", errors)
    has_subject = isinstance(payload.get("subject"), str) and payload["subject"].strip()
    if not has_subject and not all(isinstance(p, dict) and p.get("subject") for p in pers) \
            and not payload.get("template_id"):
        errors.append(_error("subject", "The subject is required. You can get around this requirement if you "
                             "use a template with a subject defined or if every personalization has a subject."))
    content = payload.get("content")
    if not payload.get("template_id"):
        if not isinstance(content, list) or not content:
            errors.append(_error("content", "Unless a valid template_id is provided, the content parameter is "
                                 "required. There must be at least one defined content block."))
        else:
            types = []
            for k, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str) \
                        or not isinstance(block.get("value"), str) or not block["value"]:
                    errors.append(_error(f"content.{k}", "The content value must be a string at least one "
                                         "character in length."))
                else:
                    types.append(block["type"])
            if "text/plain" in types and types.index("text/plain") != 0:
                errors.append(_error("content", "If present, text/plain content must be first."))
    if "headers" in payload:
        _check_strings(payload["headers"], "headers", errors)
        if isinstance(payload["headers"], dict):
            for name in payload["headers"]:
                if name.lower() in RESERVED_HEADERS:
                    errors.append(_error("headers", f"The header {name} is reserved and cannot be set."))
    if "custom_args" in payload:
        _check_strings(payload["custom_args"], "custom_args", errors, 10_000)
    cats = payload.get("categories")
    if cats is not None and (not isinstance(cats, list) or len(cats) > 10
                             or not all(isinstance(c, str) and len(c) <= 255 for c in cats)):
        errors.append(_error("categories", "At most 10 categories, strings of at most 255 characters."))
    if "send_at" in payload and not isinstance(payload["send_at"], int):
        errors.append(_error("send_at", "Invalid type. Expected: integer."))
    return errors


def _dropped(payload: dict) -> bool:
    """SendGrid's long-standing quirk: an unquoted , or ; in a recipient name -> accepted, then dropped."""
    for p in payload.get("personalizations", []):
        for addr in p.get("to", []):
            name = addr.get("name", "")
            if ("," in name or ";" in name) and not (name.startswith('"') and name.endswith('"')):
                return True
    return False


class FakeSendGrid:
    """The server, on 127.0.0.1 and a free port, served from a background thread."""

    def __init__(self, api_key: str = "SG.test-key", *, delay: float = 0.0, port: int = 0, keep: bool = True):
        self.api_key = api_key
        self.delay = delay
        self.keep = keep  # keep payloads (turn off for long benchmarks)
        self.accepted: list[dict] = []
        self.dropped: list[dict] = []
        self.requests: list[dict] = []  # {"status", "headers", "payload", "at"} of every request
        self.connections = 0
        self.count = 0
        self._plan: deque = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting the next answers ----------------------------------------------------------------------

    def answer_next(self, status: int, *, times: int = 1, headers: dict | None = None, body: dict | None = None):
        with self._lock:
            for _ in range(times):
                self._plan.append((status, dict(headers or {}), body))

    def rate_limit_next(self, reset_in: float = 1.0, times: int = 1) -> int:
        """Answer 429 next; returns the reset time (Unix seconds) sent in X-RateLimit-Reset."""
        reset = int(time.time() + reset_in + 0.999)
        self.answer_next(429, times=times, headers={"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                                                    "X-RateLimit-Reset": str(reset)},
                         body={"errors": [_error(None, "too many requests")]})
        return reset

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        self.answer_next(status, times=times, body={"errors": [_error(None, "internal error (fake)")]})

    def flaky(self, share: float, seed: int = 7) -> None:
        """From now on answer about ``share`` of the requests with 429 (reset in 1 s) or 500, at random
        (seeded): a provider having a bad day."""
        import random
        self._flaky = (share, random.Random(seed))

    # -- serving -------------------------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real API

            def setup(self):
                super().setup()
                with fake._lock:
                    fake.connections += 1

            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict | None = None, headers: dict | None = None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if fake.delay:
                    time.sleep(fake.delay)
                status, headers, body, payload = fake._respond(self.path, dict(self.headers), raw)
                self._answer(status, body, headers)

            def do_GET(self):
                self._answer(405, {"errors": [_error(None, "method not allowed")]})

        return Handler

    def _respond(self, path: str, headers: dict, raw: bytes):
        arrived = time.time()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        lower = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.count += 1
        if path.rstrip("/") != "/v3/mail/send":
            result = (404, {}, {"errors": [_error(None, f"no route {path}")]})
        elif lower.get("authorization") != f"Bearer {self.api_key}":
            result = (401, {}, {"errors": [_error(None, "The provided authorization grant is invalid, "
                                                        "expired, or revoked")]})
        elif len(raw) > MAX_BYTES:
            result = (413, {}, {"errors": [_error(None, "The JSON payload is over 30 MB.")]})
        else:
            with self._lock:
                planned = self._plan.popleft() if self._plan else None
                flaky = getattr(self, "_flaky", None)
                if planned is None and flaky is not None and flaky[1].random() < flaky[0]:
                    planned = (429, {"X-RateLimit-Reset": str(int(time.time()) + 1)},
                               {"errors": [_error(None, "too many requests")]}) if flaky[1].random() < 0.5 \
                        else (500, {}, {"errors": [_error(None, "internal error (fake)")]})
            if planned is not None:
                result = planned
            elif payload is None:
                result = (400, {}, {"errors": [_error(None, "Bad Request: the body is not valid JSON")]})
            else:
                errors = validate(payload)
                result = (400, {}, {"errors": errors}) if errors else \
                    (202, {"X-Message-Id": uuid.uuid4().hex[:22]}, None)
        status, out_headers, body = result
        with self._lock:
            if self.keep:
                self.requests.append({"status": status, "headers": headers, "payload": payload, "at": arrived})
                if status == 202 and payload is not None:
                    (self.dropped if _dropped(payload) else self.accepted).append(payload)
        return status, out_headers, body, payload

    def start(self) -> "FakeSendGrid":
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-sendgrid", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeSendGrid":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local SendGrid /v3/mail/send for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="SG.test-key")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    args = parser.parse_args(argv)
    fake = FakeSendGrid(args.api_key, delay=args.delay, port=args.port, keep=False)
    print(fake.url, flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
