"""The in-memory backend, for tests: keeps every message it is given, answers what it is told to.

``MemoryBackend(statuses={"bounce@example.com": "rejected"})`` answers ``rejected`` for that address and
``sent`` for everyone else; ``backend.outbox`` holds the messages in the order they were sent.
"""

from __future__ import annotations

import threading
from typing import Mapping

from .base import FEATURES, Backend, DeliveryResult, DeliveryStatus


class MemoryBackend(Backend):
    name = "memory"
    supported = frozenset(FEATURES)

    def __init__(self, statuses: Mapping[str, str | DeliveryStatus] | None = None, **kwargs):
        kwargs.setdefault("max_attempts", 1)
        super().__init__(**kwargs)
        self.statuses = {k.lower(): DeliveryStatus(v) for k, v in (statuses or {}).items()}
        self.outbox: list = []
        self._lock = threading.Lock()

    def build_payload(self, email):
        return email

    def post(self, payload, email) -> DeliveryStatus:
        status = self.statuses.get(email.to.lower(), DeliveryStatus.SENT)
        if status in (DeliveryStatus.SENT, DeliveryStatus.QUEUED):
            with self._lock:
                self.outbox.append(email)
        return status

    def parse_status(self, email, response: DeliveryStatus) -> DeliveryResult:
        error = None if response in (DeliveryStatus.SENT, DeliveryStatus.QUEUED) else f"told to answer {response.value}"
        return DeliveryResult(email.message_id, response, provider_message_id=f"memory-{email.message_id}",
                              error=error)
