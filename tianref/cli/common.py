"""What every command shares: turning the library's errors into one-line messages and exit codes."""
from __future__ import annotations

import contextvars
import functools
import sys

import click

from tianref.backend import BackendError
from tianref.errors import InputError, RunFailure
from tianref.rundir import describe_oserror

# set while a command is run only to validate its arguments (train --check-only from a sweep):
# errors then propagate to the caller instead of ending the process
RAISE_ERRORS = contextvars.ContextVar("raise_errors", default=False)


def reports_errors(fn):
    """Turn the library's errors into one-line messages with the documented exit codes:
    bad input 2; a failed run 1; any OSError (a full disk, a read-only folder, ...) 1, naming the
    path and the cause."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, BackendError) as exc:
            if RAISE_ERRORS.get():
                raise
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except RunFailure as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:
            click.echo(f"Error: {describe_oserror(exc)}", err=True)
            sys.exit(1)
    return wrapper
