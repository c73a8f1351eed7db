"""The ``digiq`` command line: one click group that ties the packages together.

Subcommands: ``sim``, ``tasks``, ``data``, ``collect``, ``eval``, ``autorater``, ``train`` and
``quickstart`` (the paper's experiment end to end). Trained policies are registered as agents here
(:func:`digiq.policy_agent.register`), so ``--agent RUN`` works in ``eval`` and ``collect``
without ``eval`` importing the learner. The aliases
``digiq-sim`` etc. run a subcommand directly, so ``digiq-sim start`` == ``digiq sim start``.
"""

from __future__ import annotations

import logging

import click

from android.allocator import keep_freed_memory
from digiq.collect_cli import collect_command
from digiq.data_cli import data
from digiq.eval_cli import autorater_group, eval_command
from digiq.policy_agent import register as register_policy_agent
from digiq.quickstart_cli import quickstart_command
from digiq.sim_cli import sim
from digiq.tasks_cli import tasks
from digiq.train_cli import train_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="digiq")
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Verbosity of library logging on stderr.",
)
def main(log_level: str) -> None:
    """DigiQ: offline RL (Digi-Q) for Android device-control agents, on real emulators or on
    embedded simulated devices."""
    keep_freed_memory()
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")


main.add_command(autorater_group)
main.add_command(collect_command)
main.add_command(data)
main.add_command(eval_command)
main.add_command(sim)
main.add_command(tasks)
main.add_command(train_group)
main.add_command(quickstart_command)
register_policy_agent()


def sim_main() -> None:
    """``digiq-sim``: alias of ``digiq sim``."""
    keep_freed_memory()
    sim(prog_name="digiq-sim")


def _missing(name: str) -> None:
    raise click.ClickException(
        f"'{name}' is not available in this version of digiq yet; see `digiq --help` for the "
        "commands that are."
    )


def collect_main() -> None:
    """``digiq-collect``: alias of ``digiq collect``."""
    _dispatch("collect")


def train_main() -> None:
    """``digiq-train``: alias of ``digiq train``."""
    _dispatch("train")


def eval_main() -> None:
    """``digiq-eval``: alias of ``digiq eval``."""
    _dispatch("eval")


def _dispatch(name: str) -> None:
    command = main.commands.get(name)
    if command is None:
        # Honest failure rather than a stub: the capability has not landed.
        try:
            _missing(f"digiq-{name}")
        except click.ClickException as exc:
            exc.show()
            raise SystemExit(exc.exit_code) from None
    keep_freed_memory()
    command(prog_name=f"digiq-{name}")


if __name__ == "__main__":
    main()
