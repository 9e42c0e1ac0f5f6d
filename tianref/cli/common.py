"""What every command shares: one-line error messages with the documented exit codes.

``reports_errors`` turns the library's errors (InputError, BackendError: exit 2; RunFailure: exit 1,
or 130 / 143 for its Interrupted, a run stopped by SIGINT / SIGTERM) into one line on stderr. ``OneLineErrors`` does the same for click's own usage errors (an unknown
option, a value outside a choice, a missing argument): click prints usage, a hint and the error on
three lines; we print ``Error: <message>. See 'cli.py <command> --help'.`` on one, still exit 2.
``json_safe`` makes the documents that ``edge --json`` and ``thm6 --json`` write strict JSON.
"""
from __future__ import annotations

import contextvars
import functools
import math
import os
import shutil
import signal
import sys

import click
import numpy as np  # numpy.linalg.LinAlgError, caught below

from tianref import threads as blas_threads
from tianref.backend import BackendError
from tianref.cli.progress import say
from tianref.config import parse_list
from tianref.errors import InputError, RunFailure, one_line
from tianref.numtext import parse_number
from tianref.rundir import describe_oserror

# set while a command is run only to validate its arguments (train --check-only from a sweep):
# errors then propagate to the caller instead of ending the process
RAISE_ERRORS = contextvars.ContextVar("raise_errors", default=False)
# False while validating commands that run elsewhere (a SLURM script): the backend is not opened here
CHECK_DEVICE = contextvars.ContextVar("check_device", default=True)
# True while train --check-only validates a member of train-batch: the folder is checked as the run will
# find it too (in use, not empty, not a run to replace, a resume that cannot go on), reading only
CHECK_FOLDER = contextvars.ContextVar("check_folder", default=False)


class OneLineErrors(click.Group):
    """A click Group whose usage errors are one line on stderr (exit 2)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as exc:   # the program alone: its help
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.UsageError as exc:
            msg = _hint_train_option(exc, other_name_hint(exc, exc.format_message().rstrip()))
            if exc.ctx is not None:
                msg = _hint_run_option(exc.ctx, msg)
                end = "" if msg.endswith(("?", "!")) else "."          # "Did you mean 'train'?" keeps its '?'
                msg = f"{msg.rstrip('.')}{end} See '{exc.ctx.command_path} --help'."
            say(f"Error: {one_line(msg)}")
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort as exc:               # Ctrl-C or SIGTERM (cli.Terminated) outside a training loop:
            say("Aborted!")                      # the shell's code for the signal, 128 + its number
            cause = exc.__cause__
            name = getattr(cause, "signal_name", "SIGINT") if isinstance(cause, KeyboardInterrupt) else None
            sys.exit(128 + int(signal.Signals[name]) if name else 1)
        if sys.stdout is None:                   # started with stdout closed (`>&-`): click printed nothing
            say("Error: standard output is closed: what this command prints was lost (the files it writes "
                "are written)")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


# names other codes give an option -> this tool's name for it (a hint where click's spelling guess misleads:
# --learning-rate -> "Did you mean '--ridge-reg'?")
OTHER_NAMES = {"--learning-rate": "--lr", "--learning_rate": "--lr", "--weight-decay": "--eta",
               "--weight_decay": "--eta", "--wd": "--eta", "--hidden": "--K", "--hidden-size": "--K",
               "--width": "--K", "--modulus": "--M", "--prime": "--M", "--p": "--M", "--steps": "--epochs",
               "--output": "--out", "--output-dir": "--out", "--outdir": "--out", "--activation": "--act",
               "--optim": "--optimizer", "--seeds": "--seed"}


def other_name_hint(exc, msg: str) -> str:
    """An unknown option that another code's name for one of this command's options (OTHER_NAMES): the
    message names ours instead of click's closest spelling."""
    name = getattr(exc, "option_name", None)
    cmd = getattr(getattr(exc, "ctx", None), "command", None)
    ours = OTHER_NAMES.get(name)
    if not isinstance(exc, click.NoSuchOption) or ours is None or cmd is None:
        return msg
    if not any(ours in getattr(p, "opts", ()) for p in cmd.params):
        return msg
    return f"No such option '{name}': this command calls it {ours}"


def _hint_train_option(exc, msg: str) -> str:
    """sweep given one of train's options that it does not take itself (--lr, --optimizer): train's options
    reach every run after '--'; click's closest spelling ('--help', '--plan') would mislead."""
    ctx = getattr(exc, "ctx", None)
    cmd = getattr(ctx, "command", None)
    name = getattr(exc, "option_name", None)
    if not isinstance(exc, click.NoSuchOption) or getattr(cmd, "name", None) != "sweep" or not name:
        return msg
    if name in getattr(cmd, "refused_after_dashes", ()):  # one sweep sets itself or refuses: click's hint
        return msg                                      # ('--seeds' for --seed) is the better one
    group = ctx.find_root().command                     # the program's group: its train command, unimported
    train = group.get_command(ctx, "train") if isinstance(group, click.Group) else None
    param = next((p for p in getattr(train, "params", ()) if name in p.opts), None)
    if param is None:
        return msg
    value = "" if getattr(param, "is_flag", False) else " VALUE"
    return (f"No such option '{name}': it is train's; give train's options after '--' and every run gets "
            f"them (sweep ROOT ... -- {name}{value})")


def _hint_run_option(ctx, msg: str) -> str:
    """A folder given as an argument to a command that takes it as --run (thm6, edge: summarize and plot
    take RUN_DIR as an argument, so the two are easily mixed up): the message says so."""
    cmd = getattr(ctx, "command", None)
    takes_run = any("--run" in getattr(p, "opts", ()) for p in getattr(cmd, "params", ()))
    if takes_run and msg.startswith("Got unexpected extra argument"):
        arg = msg[msg.find("(") + 1:msg.rfind(")")] if "(" in msg else ""
        if arg and os.path.isdir(arg.split()[0]):
            return f"{msg}; a run folder is given as --run {arg.split()[0]}"
    return msg


def reports_errors(fn):
    """Turn the library's errors into one-line messages with the documented exit codes:
    bad input 2; a failed run 1 (stopped by a signal: 128 + its number); any OSError (a full disk, a
    read-only folder, ...) 1, naming the path and the cause. A BrokenPipeError (a reader that closed stdout early, `| head`) passes to
    click, which ends quietly with exit 1 (stdout and stderr no longer flushed, as Python's docs
    advise); the commands write their files before they print, so none is lost. The messages go through
    progress.say: a stderr whose reader has gone loses the line, not the exit code."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, BackendError) as exc:
            if RAISE_ERRORS.get():
                raise
            say(f"Error: {one_line(str(exc))}")
            sys.exit(2)
        except RunFailure as exc:            # exit 1; a run stopped by a signal: 128 + its number
            if RAISE_ERRORS.get():           # (a caller running the command in-process handles it)
                raise
            say(f"Error: {one_line(str(exc))}")
            sys.exit(exc.exit_code)
        except BrokenPipeError:      # stdout closed by its reader (`| head`): click ends quietly, exit 1
            raise
        except np.linalg.LinAlgError as exc:     # a factorisation no check foresaw: one line, exit 1
            say(f"Error: a linear-algebra routine failed ({exc}); the inputs are too large or too "
                "ill-conditioned for it")
            sys.exit(1)
        except OSError as exc:
            if RAISE_ERRORS.get():
                raise
            say(f"Error: {one_line(describe_oserror(exc))}")
            sys.exit(1)
    return wrapper


def check_interpreter(python: str, option: str = "--python") -> None:
    """InputError unless ``python`` names an executable here (a path, or a name on PATH): the train
    children it starts would otherwise fail one by one after the output folders were made. (--plan and
    --slurm do not check it: their commands may run on another machine.)"""
    found = shutil.which(python) if os.sep not in python else (python if os.path.isfile(python)
                                                                and os.access(python, os.X_OK) else None)
    if not python.strip() or found is None:
        raise InputError(f"{option} {python!r}: no such executable here (give an interpreter, e.g. "
                         f"{sys.executable})")


FIGURE_FORMATS = ("png", "pdf", "svg")        # plot's --format; edge's and thm6's --plot by its extension


def figure_format(path: str, option: str) -> str:
    """The figure format that the file name ``path`` names by its extension (case ignored), one of
    FIGURE_FORMATS; InputError otherwise (x.jpg, no extension): a figure is written in the format its
    name says, or not at all."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FIGURE_FORMATS:
        got = f"the extension .{ext} is no figure format here" if ext else "the name has no extension"
        raise InputError(f"{option} {path}: {got}; name the file .png, .pdf or .svg (the extension sets "
                         "the format)")
    return ext


def json_safe(obj):
    """inf/NaN -> None (strict JSON), through dicts, lists and tuples; everything else unchanged."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _ascii_number(type_, value, kind, param, ctx):
    """``value`` read by tianref/numtext.py (ASCII digits, no '_': one spelling per number) when it is
    text, else as given; a usage error (one line, exit 2) naming the option otherwise."""
    if not isinstance(value, str):
        return value
    try:
        return parse_number(value, kind)
    except ValueError as exc:
        type_.fail(str(exc), param, ctx)


class Int(click.types.IntParamType):
    """click's integer, written in ASCII digits (tianref/numtext.py): int() alone reads '\u0663' as 3
    and '1_0' as 10."""

    def convert(self, value, param, ctx):
        return super().convert(_ascii_number(self, value, int, param, ctx), param, ctx)


class IntRange(click.IntRange):
    """click's IntRange, written in ASCII digits (tianref/numtext.py)."""

    def convert(self, value, param, ctx):
        return super().convert(_ascii_number(self, value, int, param, ctx), param, ctx)


# every command's --threads: a count the BLAS and OpenMP calls can take (tianref/threads.py, MAX)
THREADS = IntRange(min=1, max=blas_threads.MAX)


class Float(click.types.FloatParamType):
    """click's float, written in ASCII (tianref/numtext.py), with -0 read as 0: a setting given as -0 is
    stored, fingerprinted and named as 0.0 (-0.0 would make the same run another one)."""

    def convert(self, value, param, ctx):
        return super().convert(_ascii_number(self, value, float, param, ctx), param, ctx) + 0.0


class FiniteFloat(click.ParamType):
    """A float option refused at parse time (one line, exit 2) when it is not a finite number, or lies
    below ``low`` (``low_open``: at or below it). click's FloatRange lets nan and inf through."""
    name = "float"

    def __init__(self, low=None, low_open=False, high=None):
        self.low, self.low_open, self.high = low, low_open, high

    def convert(self, value, param, ctx):
        try:
            v = float(_ascii_number(self, value, float, param, ctx))
        except (TypeError, ValueError, OverflowError):
            v = math.nan
        low = self.low is not None and (v < self.low or (self.low_open and v == self.low))
        high = self.high is not None and v > self.high
        if not math.isfinite(v) or low or high:
            need = "" if self.low is None else f" {'>' if self.low_open else '>='} {self.low:g}"
            need += "" if self.high is None else f"{' and' if need else ''} <= {self.high:g}"
            opt = max(param.opts, key=len) if param is not None and param.opts else "the value"
            raise click.UsageError(f"{opt} must be a finite number{need} (got {value!r})", ctx)
        return v + 0.0                     # -0 is 0 (printed back as "-0" otherwise)


class GivenPath(click.Path):
    """click.Path that refuses an empty value (one line, exit 2): click turns '' into Path('.'), the
    current folder, where a sweep, reproduce or plot given '' would otherwise write."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("the path is empty; give a path", param, ctx)
        if isinstance(value, str) and not self.dir_okay and value.endswith(("/", os.sep)):
            self.fail(f"{value} ends with '/': it names a folder; give a file name", param, ctx)
        return super().convert(value, param, ctx)


class CommaChoice(click.ParamType):
    """A comma-separated list of values from a fixed set, e.g. ``--act sqr,relu``; a value outside
    the set is a usage error naming it and the choices (one line, exit 2)."""
    name = "list"

    def __init__(self, choices):
        self.choices = tuple(choices)

    def get_metavar(self, param, ctx=None):
        return "[" + "|".join(self.choices) + "],..."

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return list(value)
        try:                                   # the one list parser: an empty item is an error
            items = list(parse_list(value, "", str))
        except InputError as exc:
            self.fail(str(exc).lstrip(), param, ctx)
        if not items:
            self.fail(f"{value!r} is empty; choose from {', '.join(self.choices)}", param, ctx)
        bad = [x for x in items if x not in self.choices]
        if bad:
            self.fail(f"{bad[0]!r} is not one of {', '.join(map(repr, self.choices))}", param, ctx)
        return list(dict.fromkeys(items))


def epoch_list_options(command: str, help: str, required: bool = False):
    """``--at-epochs LIST`` (an epoch list, unlike train's and sweep's ``--epochs`` count) and its former
    name ``--epochs``, which still works with a one-line deprecation note on stderr. Both fill the
    parameter ``epochs_text``; giving both is a usage error. Works on every click >= 8.1: the former name
    is processed first when given (click handles options given on the command line first) and hands its
    value to ``--at-epochs`` through ``ctx.meta``."""
    key = "tianref.deprecated_epochs"

    def former(ctx, param, value):
        if value is None:
            return None
        if ctx.params.get("epochs_text") is not None:
            raise click.UsageError("give --at-epochs or its former name --epochs, not both", ctx)
        click.echo(f"{command}: --epochs is deprecated here (it names an epoch list); use --at-epochs", err=True)
        ctx.meta[key] = value
        return value

    def current(ctx, param, value):
        old = ctx.meta.get(key)
        if value is not None and old is not None:
            raise click.UsageError("give --at-epochs or its former name --epochs, not both", ctx)
        value = value if value is not None else old
        if value is None and required:
            raise click.UsageError("missing option '--at-epochs'", ctx)
        return value

    def decorate(fn):
        fn = click.option("--epochs", "former_epochs", default=None, expose_value=False, callback=former,
                          metavar="LIST", help="Former name of --at-epochs (deprecated; still accepted).")(fn)
        return click.option("--at-epochs", "epochs_text", default=None, callback=current, metavar="LIST",
                            cls=_RequiredInHelp if required else click.Option, help=help)(fn)
    return decorate


class _RequiredInHelp(click.Option):
    """An option that must be given, under its own name or a former one (epoch_list_options): click's
    required check would refuse the former name, so the callback checks instead, and the help marks it
    ``[required]`` as click marks every required option."""

    def get_help_record(self, ctx):
        self.required = True                    # for the help line only
        try:
            return super().get_help_record(ctx)
        finally:
            self.required = False
