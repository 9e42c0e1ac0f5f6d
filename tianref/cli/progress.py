"""Progress on stderr: a bar on a terminal; off a terminal (a log file, a pipe, a batch job) a heartbeat,
one line every ~10 % of the epochs (or items), so a log shows that a run is alive.

    RowProgress    ``train``: on a terminal a bar with the epoch, train/test accuracy and loss of the
                   last row and the time left; off one a Heartbeat
    Heartbeat      'train NAME: epoch 120/400 (30 %), 14.2 s elapsed, ~33 s left, test_acc 0.412',
                   at the first step at or past each tenth of the epochs (k = 1..10, so the last line
                   is 100 %) and after HEARTBEAT_S seconds without a line (a slow run). A row that
                   carries RUN_KEY (train-batch: the run whose row it is, of several) names it:
                   'test_acc 0.412 (run s1)'; so does the bar's row text ('s1: ep 120  train acc ...')
    CountProgress  long commands that finish items (runs of a sweep, replayed epochs, figures); given a
                   ``unit`` its label reads 'LABEL (UNITs)' and off a terminal it is a Heartbeat in that
                   unit: 'edge 2/2 probe: evaluation 121/1212 (10 %), 3.1 s elapsed, ~28 s left'

Both bars are context managers whose ``update`` draws nothing off a terminal. ``interactive()`` is the
one test of "on a terminal" (stderr is a TTY), so a command can also keep chatty notes to terminals.

Time left (``time_left``): the bar's own elapsed time since it was entered, divided by the items it has
completed, times the items left -- nothing before its first item completes, nothing from an earlier phase
(a command with phases enters one bar per phase when the phase starts).
"""
from __future__ import annotations

import math
import sys
import time

import click

BAR_WIDTH = 24
RUN_KEY = "progress_run"   # a row's key, added for the progress line only: the run whose numbers it shows
HEARTBEAT_S = 180.0        # the longest a slow run stays silent off a terminal


def say(text: str) -> None:
    """One progress line on stderr; a stderr that is gone (a pipe whose reader closed, e.g. `train ... 2>&1 |
    head`) ends the lines, not the work: progress is advisory, and a run stopped by it would lose its epochs
    since the last resume state."""
    global _STDERR_GONE
    if _STDERR_GONE:
        return
    try:
        click.echo(text, err=True)
    except (BrokenPipeError, ValueError):            # ValueError: a closed file object
        _STDERR_GONE = True


_STDERR_GONE = False


def interactive() -> bool:
    """True when stderr is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):          # closed or replaced stream
        return False


def row_text(row: dict | None) -> str:
    """'ep 120  train acc 1.000 loss 1.23e-02  test acc 0.512 loss 8.11e-02' from a metrics row."""
    if not row:
        return ""

    def num(key, spec):
        v = row.get(key)
        return "-" if v is None else format(v, spec)
    who = f"{row[RUN_KEY]}: " if row.get(RUN_KEY) else ""
    return (f"{who}ep {row.get('epoch', '-')}  train acc {num('train_acc', '.3f')} loss {num('train_loss', '.2e')}"
            f"  test acc {num('test_acc', '.3f')} loss {num('test_loss', '.2e')}")


def time_left(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the mean time per completed item; None before the first item completes or once
    all are done."""
    if done <= 0 or total is None or done >= total:
        return None
    return elapsed / done * (total - done)


def left_text(seconds: float | None) -> str:
    """'00:01:05 left' ('1d 02:00:00 left' past a day); '' when there is no estimate."""
    if seconds is None:
        return ""
    t = int(seconds)
    days, t = divmod(t, 86400)
    hms = f"{t // 3600:02}:{t % 3600 // 60:02}:{t % 60:02}"
    return (f"{days}d {hms}" if days else hms) + " left"


class _Bar:
    """A click progress bar on a terminal, nothing elsewhere."""

    def __init__(self, length: int, label: str, show: callable):
        self._ctx = None
        if interactive() and length > 0:
            self._ctx = click.progressbar(length=length, label=label, file=sys.stderr, show_eta=True,
                                          show_pos=True, width=BAR_WIDTH, item_show_func=show)
        self._bar = None
        self.share = 0.0            # the share of the work done by a finer measure (a sweep's rows), 0..1

    def __enter__(self):
        if self._ctx is not None:
            self._bar = self._ctx.__enter__()
            t0 = time.monotonic()                         # this bar's (this phase's) own clock
            bar = self._bar                               # click's estimate counts pos 0 as one item

            def eta():
                elapsed = time.monotonic() - t0
                if bar.length and bar.pos / bar.length < self.share < 1:     # the finer measure is further on
                    return left_text(elapsed / self.share * (1 - self.share))
                return left_text(time_left(elapsed, bar.pos, bar.length))
            bar.format_eta = eta
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            return self._ctx.__exit__(*exc)
        return False

    def update(self, n: int = 1, item=None) -> None:
        if self._bar is None:
            return
        if n:
            self._bar.update(n, item)
        else:                                   # click draws nothing for 0 steps: set the item and draw
            if item is not None:
                self._bar.current_item = item
            self._bar.render_progress()


def _secs(s: float) -> str:
    return f"{s:.1f} s" if s < 100 else f"{s / 60:.1f} min"


class Heartbeat:
    """One line on stderr at each tenth of ``length`` steps and after ``every_s`` seconds of silence.

    ``update(n, row)`` counts n steps and names the row's epoch: a resumed run's rows start past 0, so
    the epoch shown is the row's and the total is (row epoch - steps counted) + ``length``. The time
    left is the elapsed time per step so far times the steps to go. ``clock`` and ``echo`` (default:
    a line on stderr) are injectable (tests).
    """

    def __init__(self, length: int, label: str, clock=time.monotonic, every_s: float = HEARTBEAT_S,
                 echo=None, unit: str = "epoch"):
        self.length, self.label, self.clock, self.every_s, self.unit = length, label, clock, every_s, unit
        self.echo = echo or say
        self.marks = sorted({math.ceil(k * length / 10) for k in range(1, 11)})     # steps 1..length
        self.pos = 0
        self.t0 = self.last = clock()

    def update(self, n: int, row: dict | None) -> None:
        self.pos += n
        now = self.clock()
        due = bool(self.marks) and self.pos >= self.marks[0]
        while self.marks and self.pos >= self.marks[0]:
            self.marks.pop(0)
        if n and (due or now - self.last >= self.every_s):
            self.last = now
            self.echo(self.line(row, now - self.t0))

    def line(self, row: dict | None, elapsed: float) -> str:
        row = row or {}
        epoch = row.get("epoch", self.pos)
        total = epoch - self.pos + self.length
        text = f"{self.label}: {self.unit} {epoch}/{total} ({100 * epoch / max(total, 1):.0f} %), {_secs(elapsed)} elapsed"
        if self.pos < self.length:
            text += f", ~{_secs(elapsed / self.pos * (self.length - self.pos))} left"
        if row.get("test_acc") is not None:
            text += f", test_acc {row['test_acc']:.3f}" + (f" (run {row[RUN_KEY]})" if row.get(RUN_KEY) else "")
        return text


class RowProgress(_Bar):
    """``train``'s progress: on a terminal a bar, one step per epoch, the last row's metrics beside
    it; off a terminal a Heartbeat."""

    def __init__(self, length: int, label: str, clock=time.monotonic):
        super().__init__(length, label, row_text)
        self._beat = Heartbeat(length, label, clock) if self._ctx is None and length > 0 else None

    def update(self, n: int = 1, item=None) -> None:
        super().update(n, item)
        if self._beat is not None:
            self._beat.update(n, item)


class CountProgress(_Bar):
    """A bar over ``length`` items; ``update(1, 'name')`` shows the last item's name. With a ``unit``
    (what one item is: 'epoch', 'evaluation') the bar reads 'LABEL (UNITs)', and off a terminal a
    Heartbeat counts the items in that unit (a long loop: edge, thm6); without one it says nothing there."""

    def __init__(self, length: int, label: str, unit: str | None = None, clock=time.monotonic):
        super().__init__(length, f"{label} ({unit}s)" if unit else label,
                         lambda item: "" if item is None else str(item))
        self._beat = Heartbeat(length, label, clock, unit=unit) if unit and self._ctx is None and length > 0 \
            else None

    def update(self, n: int = 1, item=None) -> None:
        super().update(n, item)
        if self._beat is not None:
            self._beat.update(n, None)


class RunsReporter:
    """``sweep`` and ``reproduce``: on a terminal a bar over the unfinished runs and the command's
    notes; off a terminal a heartbeat as train's (one line when the runs start and each time another
    ~10 % of them has finished: "sweep: 3/8 runs finished (last: NAME)"), failures (they are errors) and
    runs skipped because they diverged earlier (the JSON summary counts them as skipped, beside the
    finished ones). ``note`` takes the engine's one-line messages (``run_jobs``' report); ``progress``
    its (finished, total, name) calls; ``rows`` its (logged, total) calls."""

    ROUTINE = ("start ", "[")                      # per-run lines that the bar replaces
    ALWAYS = ("FAILED", "STOPPED", "IN USE", "failed", "diverged earlier")   # said off a terminal too (a run
                                                    # skipped as another process's is counted in the JSON line)

    ROWS_EVERY_S = 30.0                             # off a terminal: at most one rows line this often

    def __init__(self, label: str, clock=time.monotonic):
        self.label = label
        self._bar = None
        self._rows_mark = None                      # off a terminal: the next tenth of the rows to say
        self._rows_at_start = None                  # rows logged before this command (a resumed sweep's)
        self.clock = clock
        self._rows_said = clock()

    def rows(self, logged: int, total: int) -> None:
        """The rows the unfinished runs have logged, out of ``total`` (run_jobs' rows): how far runs in
        progress are, where the runs finished say nothing yet (a batch's all finish at its end). On a
        terminal beside the bar; off one a line when another ~10 % of the rows is logged, at most one
        every ROWS_EVERY_S seconds (a short sweep says only its runs' lines)."""
        if not total:
            return
        pct = 100 * logged / total
        if interactive():
            if self._rows_at_start is None:
                self._rows_at_start = logged
            r0 = self._rows_at_start                        # its time left: from this command's rows (a
            if self._bar is not None:                       # resumed run's earlier ones took no time here)
                if total > r0:
                    self._bar.share = (logged - r0) / (total - r0)
                self._bar.update(0, f"{pct:.0f} % of the epochs")
            return
        if self._rows_mark is None:
            self._rows_mark = 10 * (math.floor(pct / 10) + 1)     # a resumed sweep starts past 0 %
        now = self.clock()
        if pct >= self._rows_mark and logged < total and now - self._rows_said >= self.ROWS_EVERY_S:
            self._rows_mark = 10 * (math.floor(pct / 10) + 1)
            self._rows_said = now
            say(f"{self.label}: {pct:.0f} % of the epochs logged ({logged}/{total} rows of the unfinished runs)")

    def note(self, msg: str) -> None:
        if any(w in msg for w in self.ALWAYS):
            self._echo(msg)
        elif interactive() and not msg.split(": ", 1)[-1].startswith(self.ROUTINE):
            self._echo(msg)

    def progress(self, finished: int, total: int, name) -> None:
        if not interactive():
            step = max(1, math.ceil(total / 10))            # about every 10 % of the runs, and the last
            if total and (finished == 0 or finished % step == 0 or finished >= total):
                say(f"{self.label}: {finished}/{total} runs finished" + (f" (last: {name})" if name else ""))
            return
        if self._bar is None and finished == 0:
            self.close()
            if total:
                self._bar = CountProgress(total, self.label).__enter__()
            return
        if self._bar is not None:
            self._bar.update(1, name)
            if finished >= total:
                self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def _echo(self, msg: str) -> None:
        if self._bar is not None and self._bar._bar is not None:
            say("")                                     # leave the bar's line
        say(msg)
