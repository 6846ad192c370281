"""One configuration resolver.

Every setting is looked up in this order, the first that answers wins:

1. an explicit argument (a CLI option, a function parameter);
2. the environment, ``COMMS_<NAME>`` (``COMMS_DATABASE_URL``, ``COMMS_HOME``, ...);
3. the configuration file: ``COMMS_CONFIG`` if set, else ``<home>/comms.toml`` (a flat TOML table);
4. the documented default;

otherwise a :class:`~comms.errors.ConfigError` names the missing setting.

Everything the embedded default writes lives under one home folder, ``./var`` unless ``COMMS_HOME`` says
otherwise; each path can also be set on its own.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent
_MISSING = object()


def _file_settings(home: Path) -> dict[str, Any]:
    path = os.environ.get("COMMS_CONFIG")
    candidate = Path(path) if path else home / "comms.toml"
    if not candidate.exists():
        if path:
            raise ConfigError("COMMS_CONFIG", f"file {candidate} does not exist")
        return {}
    try:
        with candidate.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("COMMS_CONFIG", f"{candidate} is not valid TOML: {exc}") from None
    return {str(k).lower(): v for k, v in data.items()}


def setting(name: str, arg: Any = None, default: Any = _MISSING, *, home: Path | None = None,
            cast: Callable[[Any], Any] | None = None) -> Any:
    """Resolve one setting: argument > environment > file > default, else ConfigError."""
    value: Any = arg
    if value is None:
        value = os.environ.get(f"COMMS_{name.upper()}")
    if value is None:
        value = _file_settings(home or _home()).get(name.lower())
    if value is None:
        if default is _MISSING:
            raise ConfigError(f"COMMS_{name.upper()}", "is not set (argument, environment or config file)")
        value = default
    if cast is not None and value is not None:
        try:
            value = cast(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"COMMS_{name.upper()}", f"invalid value {value!r}: {exc}") from None
    return value


def _home() -> Path:
    return Path(os.environ.get("COMMS_HOME") or PROJECT_DIR / "var").resolve()


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one process. Paths are created on first use, not here."""

    home: Path

    @classmethod
    def load(cls, home: str | Path | None = None) -> "Settings":
        return cls(home=Path(home).resolve() if home else _home())

    def get(self, name: str, arg: Any = None, default: Any = _MISSING, cast=None) -> Any:
        return setting(name, arg, default, home=self.home, cast=cast)

    @cached_property
    def database_url(self) -> str:
        return self.get("database_url", default=f"sqlite:///{self.home / 'comms.db'}")

    @cached_property
    def snapshots_dir(self) -> Path:
        return Path(self.get("snapshots_dir", default=self.home / "snapshots"))

    @cached_property
    def artifacts_dir(self) -> Path:
        return Path(self.get("artifacts_dir", default=self.home / "artifacts"))

    @cached_property
    def outbox_dir(self) -> Path:
        return Path(self.get("outbox_dir", default=self.home / "outbox"))

    @cached_property
    def models_dir(self) -> Path:
        return Path(self.get("models_dir", default=self.home / "models"))

    @cached_property
    def templates_dir(self) -> Path:
        return Path(self.get("templates_dir", default=PROJECT_DIR / "templates"))

    @cached_property
    def media_dir(self) -> Path:
        return Path(self.get("media_dir", default=PROJECT_DIR / "media"))

    @cached_property
    def segments_file(self) -> Path:
        return Path(self.get("segments_file", default=PROJECT_DIR / "segments" / "default.yaml"))

    @cached_property
    def scorecard_file(self) -> Path:
        return Path(self.get("scorecard_file", default=PROJECT_DIR / "segments" / "scorecard.yaml"))

    @cached_property
    def base_url(self) -> str:
        url = str(self.get("base_url", default="https://localhost:8000")).rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise ConfigError("COMMS_BASE_URL", f"must be an http(s) URL, got {url!r}")
        return url

    @cached_property
    def link_ttl_days(self) -> int:
        return self.get("link_ttl_days", default=60, cast=int)
