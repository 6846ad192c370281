"""The command group and what every command shares: settings, store, console."""

from __future__ import annotations

import click
from rich.console import Console

from ..config import Settings

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


class Context:
    """Lazily opened settings and store for one invocation."""

    def __init__(self, home: str | None):
        self.settings = Settings.load(home)
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from ..store import Store
            self._store = Store.open(self.settings)
        return self._store


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--home", envvar="COMMS_HOME", type=click.Path(file_okay=False),
              help="Folder for the database, snapshots and artifacts (default ./var).")
@click.version_option(package_name="comms")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Personalized collections communications: portfolio in, scored segments, every channel out.

    Example: comms sample-data --rows 1000 --out var/portfolio.csv && comms ingest var/portfolio.csv
    """
    ctx.obj = Context(home)


pass_context = click.make_pass_decorator(Context)
