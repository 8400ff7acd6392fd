# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Where an install reads its image tarball from, as one small type:

- :class:`StoreStream`: straight off the store while installing (nothing
  on disk but bundle parts), checked against the catalog once read to its
  end, before anything is registered;
- :class:`DownloadedTarball`: downloaded into the work area first, checked,
  then read (kept for a rerun with ``-d``);
- :class:`UserTarball`: a local file the user gave with ``-t``.

(:func:`inspect_tarball` reads a local one for its publisher.)

Each gives the tar.gz's bytes (``open()``), says when reading is over
(``finish()``, which raises :class:`IntegrityError` when the bytes are not
the catalog's), and whether it is a file on disk (``path``: strategies that
need to read members again, euca2ools', need one).
"""

from __future__ import absolute_import

import collections
import io
import logging
import tarfile
import zlib

from eustore_plugin.download import (CountingReader, DownloadStream, Hashes,
                                     IntegrityError, download, file_result,
                                     remove_if_present, verify)
from eustore_plugin.layout import LayoutError

LOG = logging.getLogger('eustore.tarball')


class UserTarball(object):
    """A tarball the user named (-t): theirs, read and never touched."""

    def __init__(self, path):
        self.path = path
        self.label = path

    def open(self):
        return io.open(self.path, 'rb')

    def finish(self, fileobj):
        fileobj.close()


class DownloadedTarball(UserTarball):
    """A tarball downloaded into the work area and already verified."""

    def __init__(self, path, url):
        UserTarball.__init__(self, path)
        self.label = url


class StoreStream(object):
    """
    A tarball read from the store as it is installed.  ``unverified(image)``
    is told when the catalog gave nothing to check it by; ``done()`` when it
    has been read to its end.
    """

    path = None

    def __init__(self, stream, image, unverified, done=None):
        self.stream = stream
        self.image = image
        self.unverified = unverified
        self.done = done
        self.label = stream.url

    def open(self):
        return self.stream

    def finish(self, fileobj):
        # tar stops reading at its end-of-archive blocks: the checksums are
        # of every byte, padding included.
        for _ in self.stream.chunks():
            pass
        fileobj.close()
        if self.done is not None:
            self.done()
        if not verify(self.stream.result(), self.image):
            self.unverified(self.image)


def fetch_tarball(open_url, image, path, progress, unverified,
                  stall_timeout):
    """
    Download ``image``'s tarball to ``path`` in the work area (reusing one
    an earlier run kept there if it still checks) and verify it; returns a
    :class:`DownloadedTarball`.
    """
    try:
        kept = file_result(path)
    except (IOError, OSError):
        kept = None
    if kept is not None:
        try:
            checks = verify(kept, image)
        except IntegrityError:  # verify removed it: ours, not the one
            checks = None
        if checks:
            LOG.debug('reusing %s, kept by an earlier run', path)
            return DownloadedTarball(path, image.location)
        remove_if_present(path)  # ours, but nothing proves it is the one
    LOG.debug('downloading %s to %s before installing it', image.location,
              path)
    bar = progress('downloading', image.size)
    result = download(open_url, image.location, path,
                      expected_size=image.size,
                      progress=lambda done, total: bar.update(done),
                      stall_timeout=stall_timeout)
    bar.finish()
    if not verify(result, image):
        unverified(image)
    return DownloadedTarball(path, image.location)


def stream_tarball(open_url, image, progress, unverified, stall_timeout):
    """The store's tarball as a :class:`StoreStream`, with one progress bar
    (the download paces the whole install)."""
    LOG.debug('installing %s as it streams from the store', image.location)
    bar = progress('downloading and bundling', image.size)
    stream = DownloadStream(open_url, image.location,
                            expected_size=image.size,
                            progress=lambda done, total: bar.update(done),
                            stall_timeout=stall_timeout)
    return StoreStream(stream, image, unverified, done=bar.finish)


class TarballFacts(collections.namedtuple('TarballFacts',
                                          'path size sha256 md5 members')):
    """What one pass over a local tarball learnt: its size, digests and
    members (for the layout rules)."""
    __slots__ = ()


def inspect_tarball(path):
    """
    Read a local tar.gz once: its member list (for the layout rules) and its
    size, SHA-256 and MD5 (for the catalog).  Raises LayoutError when it is
    not a tar.gz.
    """
    try:
        source = io.open(path, 'rb')
    except (IOError, OSError) as err:
        raise LayoutError('cannot read {0} ({1})'.format(
            path, err.strerror or err))
    with source:
        reader = CountingReader(source, Hashes())
        try:
            # Big reads: tarfile's default (10 KiB) costs more in calls than
            # decompressing and hashing do.
            with tarfile.open(fileobj=reader, mode='r|gz',
                              bufsize=1 << 20) as tar:
                members = list(tar)
        except (tarfile.TarError, zlib.error, IOError, EOFError) as err:
            raise LayoutError('{0} is not a readable tar.gz ({1}); an image '
                              'store holds gzipped tarballs'.format(path, err))
        for _ in iter(lambda: reader.read(1 << 20), b''):
            pass  # what is left after the archive's end: padding, trailer
    return TarballFacts(path, reader.size, reader.hashes.sha256.hexdigest(),
                        reader.hashes.md5.hexdigest(), members)
