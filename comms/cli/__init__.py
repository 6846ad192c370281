"""The ``comms`` command. Thin: every command parses options, calls one function of the package and prints.

Each area of the product has its own module here (data, segment, links, ...) that registers its commands on
the group below. A user mistake ends as one line on stderr and exit status 2; a bug still shows its traceback
when ``COMMS_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import CommsError, ConfigError
from .main import cli

# Register the commands of every area (imports for their side effect on ``cli``).
from . import campaign, data, links, lint, preview, sample, segment, serve  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="comms", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (CommsError, ConfigError) as exc:
        if os.environ.get("COMMS_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


__all__ = ["cli", "main"]
