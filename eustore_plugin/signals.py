# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Interruptions: Ctrl-C, SIGTERM and SIGHUP, handled alike.

While a command runs, SIGTERM and SIGHUP raise :class:`Interrupted` in the
main thread just as SIGINT raises KeyboardInterrupt, so that an install
killed by a service manager or a closed terminal cleans up like one stopped
with Ctrl-C.  While something must not be cut short (undoing what an
install created), :class:`Deferred` holds the signals back: they are only
noted and told, the work goes on, until the third of the command's
interruptions (counting the one that started the undo, if one did) stops
it (the caller then says exactly what is left).  Commands exit with 128 plus
the signal's number, as shells report a process killed by it.
"""

from __future__ import absolute_import

import signal

from eustore_plugin.output import warn

HANDLED = tuple(getattr(signal, name) for name in ('SIGINT', 'SIGTERM',
                                                   'SIGHUP')
                if hasattr(signal, name))
# Presses during a deferred section that stop it anyway.
STOP_AFTER = 3


class Interrupted(KeyboardInterrupt):
    """The command was interrupted by the signal ``signum``."""

    def __init__(self, signum=signal.SIGINT, message='interrupted',
                 presses=1):
        KeyboardInterrupt.__init__(self, message)
        self.signum = signum
        self.message = message
        # How many interruptions the command has had so far.
        self.presses = presses

    @property
    def exit_status(self):
        return 128 + self.signum


def signal_number(err):
    """The signal a KeyboardInterrupt stands for (SIGINT unless ours)."""
    return getattr(err, 'signum', signal.SIGINT)


def presses_of(err):
    """How many interruptions a KeyboardInterrupt stands for (1 unless
    ours says more)."""
    return getattr(err, 'presses', 1)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def raise_on_signals():
    """Make SIGTERM and SIGHUP interrupt like Ctrl-C (main thread only)."""
    for signum in HANDLED:
        if signum != signal.SIGINT:
            signal.signal(signum, _raise_interrupted)


class Deferred(object):
    """
    A section that signals do not cut short: ``with Deferred(what) as
    held:``; ``held.received`` is the first signal that came, or None.
    ``what`` (e.g. "removing what this run created") is shown when one
    comes.  ``presses``: the interruptions the command already had (the
    one that started an undo counts); once STOP_AFTER have come in all the
    section is interrupted after all.
    """

    def __init__(self, what, presses=0):
        self.what = what
        self.received = None
        self.count = min(presses, STOP_AFTER - 1)
        self._previous = {}

    def __enter__(self):
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum, frame):
        self.count += 1
        if self.received is None:
            self.received = signum
        if self.count >= STOP_AFTER:
            raise Interrupted(signum, presses=self.count)
        warn('{0} first; {1} more interruption{2} stop{3} it'.format(
            self.what, STOP_AFTER - self.count,
            '' if STOP_AFTER - self.count == 1 else 's',
            's' if STOP_AFTER - self.count == 1 else ''))

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False
