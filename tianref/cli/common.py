"""What every command shares: turning the library's errors into one-line messages and exit codes."""
from __future__ import annotations

import functools
import sys

import click

from tianref.backend import BackendError
from tianref.errors import InputError, RunFailure


def reports_errors(fn):
    """Turn the library's errors into one-line messages with the documented exit codes."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, BackendError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except RunFailure as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
    return wrapper
