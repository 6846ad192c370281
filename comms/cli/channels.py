"""Where each channel's preview and lint live. The page is rendered by the web app (it is served live), the
other channels by their renderers; the CLI, on top of every stage, is the one place that knows both."""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {"email": "comms.render.email", "letter": "comms.render.letter", "video": "comms.render.video",
           "page": "comms.web.preview"}


def channel_module(channel: str) -> ModuleType:
    return importlib.import_module(MODULES[channel])
