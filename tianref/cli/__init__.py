"""The command-line interface: thin click commands, no math.

``python cli.py <command>`` or ``tianref <command>``. Each command lives in its own
module in this package and is registered below.
"""
from __future__ import annotations

import os
import signal
import threading

import click

from tianref.allocator import keep_freed_blocks
from tianref.cli.common import OneLineErrors, reports_errors  # noqa: F401  (re-exported)

# one sentence per command for the top-level help (click would cut the first line of the docstring)
SHORT_HELP = {
    "train": "Train one run and log the paper's per-epoch diagnostics.",
    "summarize": "Compute the paper's statistics over a tree of runs.",
    "plot": "Draw the paper's figures from a tree of runs.",
    "sweep": "Train conditions x seeds into one tree (resumable, or a plan).",
    "thm6": "Check Theorem 6 exactly on a run's checkpoints.",
    "reproduce": "Run the paper's protocols and compare with its numbers.",
    "edge": "Probe the spectral edge of a run against random directions.",
    "group": "A finite group's classes and irreps, from its Cayley table.",
    "train-batch": "Train runs of one condition (seeds) as one stacked array.",
}


@click.group(cls=OneLineErrors, no_args_is_help=True,       # `python cli.py` alone prints this help, exit 0
             context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="tianref")
def main():
    """tianref: reference implementation of grokking in sigma(XW)V (Tian's Li2 setup)."""
    keep_freed_blocks()                  # reuse the epoch's large host arrays (tianref/allocator.py)
    _sigterm_as_interrupt()
    # every figure is drawn on an Agg canvas into a file (no pyplot, no window), so a display backend
    # named in MPLBACKEND means nothing here; a name matplotlib does not know made its import raise.
    # Put back when the command ends (a caller in the same process keeps its environment)
    backend = os.environ.pop("MPLBACKEND", None)
    if backend is not None:
        click.get_current_context().call_on_close(lambda: os.environ.__setitem__("MPLBACKEND", backend))


class Terminated(KeyboardInterrupt):
    """SIGTERM outside a training loop (which stops at a row boundary itself: train._Stop)."""
    signal_name = "SIGTERM"


def _sigterm_as_interrupt():
    """SIGTERM raises Terminated (a KeyboardInterrupt) instead of ending the process at once, so that
    outside a training loop (setting runs up, between the stacks of a batch) it unwinds as Ctrl-C does:
    a run being prepared is rolled back and an --overwrite puts the old run back (tianref/rundir.py);
    exit 143 (128 + SIGTERM). Only in the main thread, only over the default handler; restored when the command ends."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum, frame):
        raise Terminated()
    signal.signal(signal.SIGTERM, handler)
    click.get_current_context().call_on_close(lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


from tianref.cli.train import train_cmd  # noqa: E402

main.add_command(train_cmd, "train")
from tianref.cli.analysis import plot_cmd, summarize_cmd  # noqa: E402

main.add_command(summarize_cmd, "summarize")
main.add_command(plot_cmd, "plot")
from tianref.cli.sweep import sweep_cmd  # noqa: E402

main.add_command(sweep_cmd, "sweep")

from tianref.cli.thm6 import thm6_cmd  # noqa: E402

main.add_command(thm6_cmd, "thm6")

from tianref.cli.reproduce import reproduce_cmd  # noqa: E402

main.add_command(reproduce_cmd, "reproduce")

from tianref.cli.edge import edge_cmd  # noqa: E402

main.add_command(edge_cmd, "edge")

from tianref.cli.group import group_cmd  # noqa: E402

main.add_command(group_cmd, "group")

from tianref.cli.batch import train_batch_cmd  # noqa: E402

main.add_command(train_batch_cmd, "train-batch")

for _name, _text in SHORT_HELP.items():
    if _name in main.commands:
        main.commands[_name].short_help = _text
