# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Where an install keeps its large files: bundle parts and, with ``-d DIR``,
the downloaded tarball for a later run.

``-d DIR`` is the user's directory, maybe shared, and holds things this tool
did not create: nothing in it is ever deleted, truncated, overwritten or
appended to.  The tool works in a directory of its own inside it,
``DIR/eustore-install/``, which it creates (owner-only), marks as its own,
and refuses to use if something else made it.  Inside it:

- ``downloads/``: tarballs kept for a rerun, each named after its URL's
  digest and file name (two stores' ``centos.tgz`` do not meet), with the
  ``.part`` of an interrupted download beside it to resume;
- ``runs/<id>/``: each run's bundle parts, in a directory of the run's own,
  so a run killed with -9 leaves nothing in the way of the next one; a run
  directory whose run is gone (its lock file is not locked) is removed by the
  next run.

Without ``-d`` everything is in a fresh temporary directory, removed at the
end.
"""

from __future__ import absolute_import

import errno
import fcntl
import hashlib
import io
import logging
import os
import os.path
import re
import shutil
import stat
import tempfile
import time

from eustore_plugin.errors import EustoreError

LOG = logging.getLogger(__name__)

WORK_DIR_NAME = 'eustore-install'
MARKER_NAME = '.eustore-install'
MARKER_TEXT = (u'This directory belongs to eustore-install-image: tarballs '
               u'kept for a rerun and the parts of installs in progress.  '
               u'Delete it when no install is running.\n')
_UNSAFE_NAME_RE = re.compile(r'[^A-Za-z0-9._-]')
# A run directory younger than this may be one whose run has not taken its
# lock yet.
_NEW_RUN_SECONDS = 60


class WorkAreaError(EustoreError):
    pass


def _owned_private_dir(path):
    """Whether ``path`` is a real directory of ours that others cannot
    write to."""
    try:
        status = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(status.st_mode) and
            status.st_uid == os.geteuid() and
            not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _make_private_dir(path):
    try:
        os.mkdir(path, 0o700)
    except OSError as err:
        if err.errno != errno.EEXIST:
            raise


def create_private_file(path, text):
    """Write a new file, never following a link or replacing a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                 getattr(os, 'O_NOFOLLOW', 0), 0o600)
    with io.open(fd, 'w', encoding='utf-8') as out:
        out.write(text)


class WorkArea(object):
    """See the module's docstring.  Use as a context manager."""

    def __init__(self, user_dir=None):
        self.user_dir = user_dir
        self.root = None
        self.run_dir = None
        self._lock = None
        self._temporary = user_dir is None

    def __enter__(self):
        if self._temporary:
            self.root = tempfile.mkdtemp(prefix='eustore-install-')
            self.run_dir = self.root
            return self
        self.root = os.path.join(self.user_dir, WORK_DIR_NAME)
        self._claim_root()
        runs = os.path.join(self.root, 'runs')
        _make_private_dir(runs)
        _make_private_dir(os.path.join(self.root, 'downloads'))
        self._remove_dead_runs(runs)
        self.run_dir = tempfile.mkdtemp(dir=runs)
        # Held while the run lives: the next run knows it is gone when it
        # can take the lock.
        self._lock = io.open(os.path.join(self.run_dir, '.lock'), 'wb')
        fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self

    def __exit__(self, *exc_info):
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self._lock.close()
        return False

    def _claim_root(self):
        root = self.root
        marker = os.path.join(root, MARKER_NAME)
        if not os.path.lexists(root):
            _make_private_dir(root)
            try:
                create_private_file(marker, MARKER_TEXT)
            except OSError as err:
                if err.errno != errno.EEXIST:
                    raise
        if not _owned_private_dir(root) or not os.path.isfile(marker) or \
                os.path.islink(marker):
            raise WorkAreaError(
                '{0} was not made by eustore-install-image (or others may '
                'write to it), so it is not used: move it away or give '
                'another -d directory'.format(root))

    def _remove_dead_runs(self, runs):
        for name in os.listdir(runs):
            path = os.path.join(runs, name)
            if not _owned_private_dir(path) or \
                    time.time() - os.lstat(path).st_mtime < _NEW_RUN_SECONDS:
                continue  # not ours, or a run starting this very moment
            try:
                with io.open(os.path.join(path, '.lock'), 'rb') as lock:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (IOError, OSError) as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN,
                                 errno.EACCES):
                    continue  # a live run's
                if err.errno != errno.ENOENT:
                    continue
            LOG.debug('removing %s, left by an interrupted run', path)
            shutil.rmtree(path, ignore_errors=True)

    @property
    def keeps_downloads(self):
        return not self._temporary

    def download_path(self, url):
        """Where the tarball at ``url`` is kept (-d) or downloaded to."""
        base = url.rstrip('/').split('?', 1)[0].rsplit('/', 1)[-1]
        base = _UNSAFE_NAME_RE.sub('_', base)[-100:] or 'tarball'
        digest = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
        directory = os.path.join(self.root, 'downloads') \
            if not self._temporary else self.run_dir
        return os.path.join(directory, '{0}-{1}'.format(digest, base))
