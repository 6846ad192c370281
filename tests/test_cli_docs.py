"""Every command explains itself: --help works, has a description and an Example line; mistakes are one line."""

import click
import pytest

from comms.cli import cli
from conftest import run_cli


def _commands(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


COMMANDS = list(_commands(cli))


def test_the_contract_commands_exist():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"sample-data", "ingest", "score", "segment", "preview", "links sign", "links verify"} <= names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path, cmd):
    assert cmd.help and cmd.help.strip(), f"comms {' '.join(path)} has no help text"
    if not isinstance(cmd, click.Group):
        assert "Example:" in cmd.help, f"comms {' '.join(path)} has no Example: line"


def test_help_runs_from_the_real_command(home):
    proc = run_cli("--help", home=home)
    assert proc.returncode == 0
    assert "sample-data" in proc.stdout and "ingest" in proc.stdout


def test_unknown_command_is_one_line_and_nonzero(home):
    proc = run_cli("frobnicate", home=home)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
