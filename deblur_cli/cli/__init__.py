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
COMMAND_MODULES = ["image", "batch", "video", "weights", "train", "eval", "synth", "demo"]


class DeblurGroup(click.Group):
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
