"""The outbox backend (the embedded default): each message is written as an .eml file to open in any mail
program, under ``<outbox_dir>/<campaign>/<message id>.eml``.

Files appear whole or not at all (written to a temporary name, then renamed), and the name is our message
id, so sending the same message twice leaves one file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .base import Backend, DeliveryResult, DeliveryStatus


def campaign_folder(campaign: str) -> str:
    """A campaign name as a safe folder name (it is an id, but it comes from a user)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", campaign).strip("._") or "campaign"


class OutboxBackend(Backend):
    name = "outbox"
    supported = frozenset()  # no provider: tags and scheduled sending have nowhere to go

    def __init__(self, directory: Path, **kwargs):
        super().__init__(**kwargs)
        self.directory = Path(directory)

    def path_for(self, email) -> Path:
        return self.directory / campaign_folder(email.campaign) / f"{email.message_id}.eml"

    def build_payload(self, email) -> tuple[Path, bytes]:
        return self.path_for(email), email.mime_bytes()

    def post(self, payload: tuple[Path, bytes], email) -> Path:
        path, data = payload
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def parse_status(self, email, response: Path) -> DeliveryResult:
        return DeliveryResult(email.message_id, DeliveryStatus.SENT, provider_message_id=str(response))
