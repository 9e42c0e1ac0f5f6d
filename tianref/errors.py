"""The two kinds of failure the tool reports, and their exit codes.

* ``InputError``  bad input: a bad range, a missing or mis-shaped file, an unusable backend.
                  The CLI prints one line and exits with code 2 (no traceback).
* ``RunFailure``  the computation itself failed (e.g. the loss became non-finite).
                  The CLI prints one line and exits with code 1; everything logged so far is kept.
"""


class InputError(ValueError):
    exit_code = 2


class RunFailure(RuntimeError):
    exit_code = 1
