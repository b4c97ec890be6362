"""The ``deblur`` command: a thin click shell over the library.

Each verb lives in its own module and registers itself on :data:`main`. Library errors
(:class:`~deblur_cli.errors.DeblurError`) become one line on stderr and the error's exit
code; Ctrl-C exits 130 after the command has cleaned up.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import DeblurError

# Verb modules, in the order they appear in --help.
COMMAND_MODULES = ["image", "batch", "video", "weights", "train", "eval", "synth", "teach", "demo"]


def usage_line(err: click.UsageError) -> str:
    """click's four-line Usage/Try/blank/Error block as one line: the problem, then where
    to read more (``error: missing argument 'INPUTS...' (see 'deblur image --help')``)."""
    message = " ".join(err.format_message().split()).rstrip(".")
    message = message.replace(". Did you mean", "; did you mean")
    if message[1:2].islower():  # "Missing argument" → "missing argument"; "JPEG" stays
        message = message[:1].lower() + message[1:]
    where = err.ctx.command_path if err.ctx is not None else "deblur"
    return f"{message} (see '{where} --help')"


class DeblurGroup(click.Group):
    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Usage errors as one ``error:`` line with exit code 2, as every other error."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as err:
            click.echo(f"error: {usage_line(err)}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"error: {' '.join(err.format_message().split())}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:  # Ctrl-C or end of input outside a command
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DeblurError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: run the same command again to resume", err=True)
            sys.exit(130)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # keep our order, not alphabetical


@click.group(cls=DeblurGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deblur")
def main() -> None:
    """Remove motion blur from photos and video (multi-scale CNN, Nah et al. CVPR 2017).

    \b
    Examples:
      deblur image photo.jpg                 # writes photo_deblurred.jpg
      deblur image a.png b.png -o out/       # several inputs into a folder
      deblur batch photos/ -o restored/      # a whole tree, resumable
      deblur video clip.mp4                  # keeps audio and timing
      deblur weights list                    # models you can use with --weights
    """


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}_cmd")
    except ModuleNotFoundError as _err:
        if _err.name != f"{__name__}.{_name}_cmd":
            raise
        continue
    for _command in _module.COMMANDS:
        main.add_command(_command)
