"""The two kinds of failure the tool reports, and their exit codes.

* ``InputError``  bad input: a bad range, a missing or mis-shaped file, an unusable backend.
                  The CLI prints one line and exits with code 2 (no traceback).
* ``RunFailure``  the computation itself failed (e.g. the loss became non-finite).
                  The CLI prints one line and exits with code 1; everything logged so far is kept.
                  ``Interrupted``, its kind for a run (or sweep) stopped by SIGINT or SIGTERM after
                  saving its resume state, exits with the shell's code for that signal, 128 + its
                  number (130 for Ctrl-C, 143 for SIGTERM), so a script can tell a stop from a failure.
                  ``Diverged``, its kind for a run whose loss or parameters became non-finite or whose
                  ridge solve failed, names the epoch and which (the CLI records it in the run's
                  config.json: runs.record_divergence).
"""
import signal


class InputError(ValueError):
    exit_code = 2


class RunInUse(InputError):
    """A run directory locked by another process: bad input for this command (exit 2), though nothing is
    wrong with the command line itself (train-batch trains its other members)."""


class RunFailure(RuntimeError):
    exit_code = 1


class Interrupted(RunFailure):
    """A run or sweep stopped by the signal ``name`` ('SIGINT' or 'SIGTERM') at a row boundary, its
    resume state saved: exit code 128 + the signal's number."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name
        self.exit_code = 128 + int(signal.Signals[name])


class Diverged(RunFailure):
    """A run ended at ``epoch`` because its ``what`` ('loss' or 'parameters') became non-finite, or
    ('ridge solve') the ridge solve of the step to row ``epoch`` failed (tianref/ridge.py: activations
    too large for its regulariser). The steps are deterministic, so the run would diverge there
    again: it is over, not unfinished."""

    KINDS = ("loss", "parameters", "ridge solve")     # the values of ``what``

    def __init__(self, message: str, epoch: int, what: str):
        super().__init__(message)
        self.epoch, self.what = int(epoch), what


def breaks_line(c: str) -> bool:
    """Whether the character ``c`` breaks or rewrites a line of text: a C0 control (newline, tab, ESC, ...),
    DEL, a C1 control (NEL, ...) or the Unicode line and paragraph separators."""
    o = ord(c)
    return o < 32 or 127 <= o < 160 or c in "\u2028\u2029"


def one_line(text: str) -> str:
    """``text`` with each character that breaks_line written as its escape: a path given with a newline in it
    keeps an error message, or a script's comment, one line (other text, é or a no-break space, is kept)."""
    return "".join(repr(c)[1:-1] if breaks_line(c) else c for c in text)
