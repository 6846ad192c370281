"""The secrets behind payment links: where they come from, how they rotate.

Keys are read from the first source that has them:

1. the setting ``link_keys`` (environment ``COMMS_LINK_KEYS`` or ``link_keys`` in the config file), a list
   such as ``k2:<base64 secret>,k1:<base64 secret>``;
2. otherwise the key file ``<home>/link-keys`` (the embedded default): created on first use with one random
   256-bit secret, mode 0600, and reused after. ``comms links rotate`` prepends a new key to it.

The first key signs new links; every listed key verifies, so rotating never breaks links already sent.
Remove a key only once the links it signed have expired. A key is named ``k<N>`` (N from 0 to 255): the
number travels in each token, so a verifier knows which key to use without trying them all.

In distributed mode every machine must verify what any machine signed: set the same ``COMMS_LINK_KEYS``
everywhere (or share the home folder), never let each machine generate its own key file.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError

SETTING = "COMMS_LINK_KEYS"
KEY_FILE_NAME = "link-keys"
SECRET_BYTES = 32
_NAME = re.compile(r"k(\d{1,3})")
_FILE_HEADER = ("# Payment-link keys: the first signs new links, all verify. Keep this file secret (mode 0600).\n"
                "# Rotate with `comms links rotate`; delete a key only after the links it signed have expired.\n")


@dataclass(frozen=True)
class LinkKey:
    """One named secret. The secret is never shown in a repr or a log."""

    id: int
    secret: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return f"k{self.id}"

    def entry(self) -> str:
        return f"{self.name}:{base64.urlsafe_b64encode(self.secret).decode('ascii').rstrip('=')}"

    @classmethod
    def generate(cls, key_id: int) -> "LinkKey":
        return cls(key_id, secrets.token_bytes(SECRET_BYTES))


@dataclass(frozen=True)
class LinkKeys:
    """An ordered set of keys: ``keys[0]`` signs, all verify. ``source`` says where they came from."""

    keys: tuple[LinkKey, ...]
    source: str
    path: Path | None = None  # the key file, when the keys live in one (only then can they be rotated here)

    @property
    def signing(self) -> LinkKey:
        return self.keys[0]

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def parse(cls, text: str, *, source: str, setting: str = SETTING, path: Path | None = None) -> "LinkKeys":
        """Parse ``k2:secret,k1:secret`` (commas or newlines; ``#`` comment lines allowed in a file)."""
        lines = [ln for ln in str(text).splitlines() if not ln.strip().startswith("#")]
        entries = [e.strip() for e in re.split(r"[,\s]+", " ".join(lines)) if e.strip()]
        if not entries:
            raise ConfigError(setting, "no keys given; expected e.g. k1:<base64 secret> "
                                       "(generate a secret with: openssl rand -base64 32)")
        keys: list[LinkKey] = []
        for n, entry in enumerate(entries, 1):
            name, sep, encoded = entry.partition(":")
            m = _NAME.fullmatch(name)
            if not sep or not m or int(m.group(1)) > 255:
                raise ConfigError(setting, f"entry {n} must look like k<0-255>:<base64 secret>, "
                                           f"got {name[:12]!r}{':...' if sep else ''}")
            secret = _decode_secret(encoded)
            if secret is None:
                raise ConfigError(setting, f"key {name}: the secret is not valid base64")
            if len(secret) < SECRET_BYTES:
                raise ConfigError(setting, f"key {name}: the secret has {len(secret)} bytes, at least "
                                           f"{SECRET_BYTES} are needed (openssl rand -base64 32)")
            key = LinkKey(int(m.group(1)), secret)
            if any(k.id == key.id for k in keys):
                raise ConfigError(setting, f"key {name} is listed twice")
            keys.append(key)
        return cls(tuple(keys), source=source, path=path)

    @classmethod
    def from_settings(cls, settings: Settings) -> "LinkKeys":
        """The configured keys, else the key file under home (created with a fresh key on first use)."""
        configured = _configured(settings)
        if configured:
            where = "environment COMMS_LINK_KEYS" if os.environ.get(SETTING) else "setting link_keys"
            return cls.parse(configured, source=where)
        return load_key_file(key_file_path(settings), create=True)

    def to_text(self) -> str:
        return _FILE_HEADER + "".join(k.entry() + "\n" for k in self.keys)


def _configured(settings: Settings) -> str | None:
    """The ``link_keys`` setting as text; the config file may also give it as a TOML list."""
    value = settings.get("link_keys", default=None)
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return value or None


def _decode_secret(encoded: str) -> bytes | None:
    """Accept standard or URL-safe base64, padded or not (what openssl and Python print)."""
    cleaned = encoded.strip().rstrip("=")
    if not cleaned or not re.fullmatch(r"[A-Za-z0-9+/_-]+", cleaned):
        return None
    try:
        return base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return None


def key_file_path(settings: Settings) -> Path:
    return settings.home / KEY_FILE_NAME


def load_key_file(path: Path, *, create: bool = False) -> LinkKeys:
    """Read the key file; with ``create``, make it with one random key if it does not exist yet."""
    if not path.exists():
        if not create:
            raise ConfigError(str(path), "the link key file does not exist")
        _write_private(path, LinkKeys((LinkKey.generate(1),), source="").to_text(), replace=False)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigError(str(path), f"link keys are readable by other users; run: chmod 600 {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read the link key file: {exc}") from None
    return LinkKeys.parse(text, source=f"key file {path}", setting=f"{SETTING} (key file {path})", path=path)


def _write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write a 0600 file atomically: replace it, or create it only if absent (two first starts keep one key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic create-if-absent; the loser of a race reads the winner's key
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Rotation:
    """What ``rotate_key_file`` did, for the operator."""

    added: LinkKey
    keys: LinkKeys
    created: bool  # the file did not exist: it now holds this single key


def rotate_key_file(settings: Settings) -> Rotation:
    """Prepend a fresh key to the key file: it signs from now on, the old ones still verify.

    Keys that come from the environment or the config file cannot be rotated here (this process cannot
    change every machine's environment): that raises ConfigError explaining what the operator must do.
    """
    configured = _configured(settings)
    if configured:
        current = LinkKeys.parse(configured, source="")
        new = f"k{_next_id(current)}"
        where = "COMMS_LINK_KEYS" if os.environ.get(SETTING) else "link_keys in the config file"
        raise ConfigError(SETTING, f"keys come from {where}, nothing changed here; to rotate, prepend a new "
                                   f"key (e.g. {new}:$(openssl rand -base64 32)) to {where} on every machine, "
                                   f"keep {current.signing.name} and older keys until their links expire")
    path = key_file_path(settings)
    if not path.exists():
        keys = load_key_file(path, create=True)
        return Rotation(keys.signing, keys, created=True)
    current = load_key_file(path)
    added = LinkKey.generate(_next_id(current))
    keys = LinkKeys((added, *current.keys), source=current.source, path=path)
    _write_private(path, keys.to_text(), replace=True)
    return Rotation(added, keys, created=False)


def _next_id(keys: LinkKeys) -> int:
    used = {k.id for k in keys}
    top = max(used) + 1
    if top <= 255:
        return top
    free = [i for i in range(256) if i not in used]
    if not free:
        raise ConfigError(SETTING, "all 256 key ids are in use; remove keys whose links have expired")
    return free[0]
