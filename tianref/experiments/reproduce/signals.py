"""SIGINT and SIGTERM held over a few renames that must happen together (a section's outputs swapped into
place, a stored copy replaced): a stop that comes meanwhile acts once they are done.

Used by tianref/experiments/reproduce/pipeline.py (``_swap_in``) and store.py (``store_section``).
"""
from __future__ import annotations

import signal
import threading


class signals_held:
    """Context manager: SIGINT and SIGTERM recorded, not acted on, while it is open (by Python handlers on
    the main thread, where Python runs them: a mask would not hold a signal that a BLAS thread takes). On
    exit the previous handlers come back (each whatever happens to another) and a recorded signal is raised
    again, so that it acts after the block; where the block failed, its error is what the command reports
    (a failure is exit 1 even when a stop came with it, as a sweep's is)."""
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.got, self.old = [], {}
        if threading.current_thread() is threading.main_thread():
            try:
                for sig in self.SIGNALS:
                    self.old[sig] = signal.signal(sig, self._record)
            except BaseException:
                self._restore()
                raise
        return self

    def _record(self, signum, frame):
        self.got.append(signum)

    def _restore(self):
        """Each previous handler back, the next one in a ``finally``: a signal acted on as soon as its own
        handler is back cannot leave another one recording."""
        items, self.old = list(self.old.items()), {}

        def back(i):
            if i < len(items):
                try:
                    signal.signal(*items[i])
                finally:
                    back(i + 1)
        back(0)

    def __exit__(self, *exc):
        self._restore()
        if self.got and exc[0] is None:
            signal.raise_signal(self.got[0])
        return False
