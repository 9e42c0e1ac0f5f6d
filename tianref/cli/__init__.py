"""The command-line interface: thin click commands, no math.

``python cli.py <command>`` or ``tianref <command>``. Each command lives in its own
module in this package and is registered below.
"""
from __future__ import annotations

import click

from tianref.cli.common import reports_errors  # noqa: F401  (re-exported)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="tianref")
def main():
    """tianref: reference implementation of grokking in sigma(XW)V (Tian's Li2 setup)."""


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
