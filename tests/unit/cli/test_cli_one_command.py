"""A run builds only the command it names (mailintake.cli.main.for_command), and that command
reads its command line as the whole app would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
import typer.main
from typer.testing import CliRunner

from mailintake.cli.main import _VALUED, app, for_command

NAMES = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]


@pytest.fixture(autouse=True)
def logging_kept() -> Iterator[None]:
    """The global options set up logging on the runner's stream, closed after: back to what
    was before, for the tests that follow in this process."""
    configured, config = structlog.is_configured(), structlog.get_config()
    yield
    if configured:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()


@pytest.mark.parametrize(
    ("argv", "kept"),
    [
        (["poll", "claims"], "poll"),
        (["--log-level", "info", "authorize", "claims"], "authorize"),
        (["--home=/srv/intake", "--log-json", "servers", "list"], "servers"),
        (["--database-url", "sqlite:///x.db", "--home", "/srv", "status"], "status"),
    ],
)
def test_the_named_command_is_the_only_one_built(argv: list[str], kept: str) -> None:
    one = for_command(argv)
    names = [c.name for c in one.registered_commands] + [g.name for g in one.registered_groups]
    assert names == [kept]
    assert one.registered_callback is app.registered_callback  # the global options stay
    assert len(app.registered_commands) + len(app.registered_groups) == len(NAMES)


def test_the_valued_global_options_are_those_of_the_app() -> None:
    """The word after one of them is its value, not the command: the list the command line
    is read with is the app's own."""
    options = typer.main.get_command(app).params
    valued = {
        name
        for option in options
        if option.param_type_name == "option" and not getattr(option, "is_flag", False)
        for name in option.opts
    }
    assert valued == _VALUED


@pytest.mark.parametrize("argv", [[], ["--help"], ["pol"], ["--home", "poll"], ["--", "poll"]])
def test_no_known_command_keeps_the_whole_app(argv: list[str]) -> None:
    assert for_command(argv) is app


@pytest.mark.parametrize("name", NAMES)
def test_each_command_reads_its_line_as_the_whole_app_does(name: str) -> None:
    runner = CliRunner()
    for argv in ([name, "--help"], ["--log-level", "info", name, "--no-such-option"]):
        whole = runner.invoke(app, argv, prog_name="mailintake")
        one = runner.invoke(for_command(argv), argv, prog_name="mailintake")
        assert (one.exit_code, one.output) == (whole.exit_code, whole.output), argv
        assert f"mailintake {name}" in whole.output, whole.output
