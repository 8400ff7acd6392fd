# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Uploads under way at once, bounded: the pool the snapshot writer's blocks
go up through (snapshot.py), shaped like the built-in bundler's part
uploads (builtin.py's PartUploads), so that one piece can serve both.
"""

from __future__ import absolute_import

import sys
import threading

import six
from six.moves import queue

# How often a waiting thread wakes up: lets Ctrl-C through on Python 2.
POLL_SECONDS = 0.5


class UploadPool(object):
    """
    Jobs on their way up, ``concurrency`` at a time: ``submit(job)``
    returns at once while fewer than ``held`` jobs are held (submitted,
    not yet done), else waits for one to be done; ``wait`` returns when
    all are done.  ``send(job, stopping)`` does each, retries included
    (waiting on ``stopping``, an Event set once nothing more is to be
    sent); ``finished(job)``, when given, is told each job done, sent or
    not.  The first failure stops the rest and is raised by ``submit`` or
    ``wait``.  After ``close`` returns nothing more is sent.  As a context
    manager: closed at the end of the block, cancelled first on failure.
    """

    def __init__(self, send, concurrency, held=None, finished=None,
                 name='upload'):
        self._send = send
        self._finished = finished
        self._slots = threading.Semaphore(held or concurrency)
        self._jobs = queue.Queue()
        self._errors = []
        self.stopping = threading.Event()
        self._in_flight = 0
        self._idle = threading.Condition()
        self._threads = []
        for number in range(concurrency):
            thread = threading.Thread(target=self._work,
                                      name='{0}-{1}'.format(name, number))
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        """Closed, after cancelling what waits when the block failed."""
        if exc_type is not None:
            self.cancel()
        self.close()
        return False

    def submit(self, job):
        self._raise_failure()
        while not self._slots.acquire(False):
            self._raise_failure()
            with self._idle:
                self._idle.wait(POLL_SECONDS)
        with self._idle:
            self._in_flight += 1
        self._jobs.put(job)

    def wait(self):
        with self._idle:
            while self._in_flight and not self._errors:
                self._idle.wait(POLL_SECONDS)
        self._raise_failure()

    def cancel(self):
        """Send no more (the caller is failing anyway)."""
        self.stopping.set()

    def close(self):
        """Stop, after the sends under way have ended (so that nothing
        lands after an undo has removed it)."""
        self.stopping.set()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            while thread.is_alive():
                thread.join(POLL_SECONDS)

    def _raise_failure(self):
        if self._errors:
            six.reraise(*self._errors[0])

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                if not (self._errors or self.stopping.is_set()):
                    self._send(job, self.stopping)
            except BaseException:  # pylint: disable=broad-except
                self._errors.append(sys.exc_info())
            finally:
                if self._finished is not None:
                    self._finished(job)
                job = None  # what it holds is free once its slot is
                self._slots.release()
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()
