"""One exception tree for everything a caller may catch, retry or report.

    ConfigError                  a setting is missing or wrong: fix the configuration, never retried
    CommsError                   base of everything below; str() is one line a user can act on
     ├── InputError              a user-supplied file or argument cannot be used at all
     │    ├── FileFormatError    unreadable file: missing, unknown format, undecodable encoding
     │    └── MappingError       a mapping file names a column that does not exist, or is malformed
     ├── RuleError               a segment rule or derived-field expression does not parse or type-check
     ├── SegmentConfigError      segments file invalid: no fallback, unknown treatment, bad offer
     ├── StoreError              the store cannot be used (no snapshot yet, unknown id, schema too old)
     ├── ModelError              scoring model cannot be trained or used (no outcome column, one class)
     └── LinkError               a payment link is forged, tampered, expired or revoked (fails closed)

Row-level problems in a portfolio are not exceptions: they are collected per row and written to the
rejects file, so that counts always reconcile.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is missing or invalid. Kept outside CommsError: it is never retried."""

    def __init__(self, setting: str, problem: str):
        self.setting = setting
        self.problem = problem
        super().__init__(f"configuration {setting}: {problem}")


class CommsError(Exception):
    """Base of every error the package raises on purpose. The message is one actionable line."""


class InputError(CommsError):
    pass


class FileFormatError(InputError):
    pass


class MappingError(InputError):
    pass


class RuleError(CommsError):
    def __init__(self, expression: str, problem: str, where: str = ""):
        self.expression = expression
        self.problem = problem
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}rule {expression!r}: {problem}")


class SegmentConfigError(CommsError):
    pass


class StoreError(CommsError):
    pass


class ModelError(CommsError):
    pass


class LinkError(CommsError):
    """A payment link that must not open anything. The reason is for logs, never for the customer."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"invalid link: {reason}")
