"""``app()`` for uvicorn's ``--factory`` (several worker processes: each builds its own app)."""

from __future__ import annotations


def app():
    from ..config import Settings
    from .app import create_app
    return create_app(Settings.load(), serving=True)
