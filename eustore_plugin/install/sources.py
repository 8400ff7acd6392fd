# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Where an install reads its image from, each as one small type.

Tarballs (a disk image, and maybe kernels and ramdisks):

- :class:`StoreStream`: straight off the store while installing (nothing
  on disk but bundle parts), checked against the store's digests once read
  to its end, before anything is registered;
- :class:`DownloadedTarball`: downloaded into the work area first, checked,
  then read (kept for a rerun with ``-d``);
- :class:`UserTarball`: a local file the user gave with ``-t``.

Each gives the tar.gz's bytes (``open()``), is told when reading is over
(``finish()``, which raises IntegrityError when the bytes are not the
store's), and says whether it is a file on disk (``path``: strategies that
read members again, euca2ools', need one).

Whole-disk images (simplestreams' disk1.img, virt-builder templates) are
:class:`DiskSource` objects: one raw disk (``member()``), streamed and
decompressed as it is downloaded when that can be, else made a raw file in
the work area (qcow2, or when the bundler needs a file); diskimage.py says
how.
"""

from __future__ import absolute_import

import collections
import io
import logging
import os.path

from eustore_plugin.errors import EustoreError
from eustore_plugin.images.diskimage import (QCOW2_HEADER_BYTES,
                                             DiskImageError, check_raw_size,
                                             convert_qcow2, decompress_to,
                                             qcow2_virtual_size, xz_reader)
from eustore_plugin.images.inflate import CHUNK_SIZE, InflateError, TarStream
from eustore_plugin.images.layout import analyze
from eustore_plugin.limits import DISK_FILE, MAX_IMAGE_SIZE, SizeLimit
from eustore_plugin.output import warn
from eustore_plugin.store.download import (DownloadStream, Hashes,
                                           IntegrityError, download,
                                           file_result, remove_if_present,
                                           verify)

LOG = logging.getLogger(__name__)


# The two kinds of source, as the installer tells them apart.
TARBALL = 'tarball'
DISK = 'disk'


class UserTarball(object):
    """A tarball the user named (-t): theirs, read and never touched."""

    kind = TARBALL

    def __init__(self, path):
        self.path = path
        self.label = path

    def open(self):
        return io.open(self.path, 'rb')

    def finish(self, fileobj):
        fileobj.close()

    def virtualization_type(self, hypervisor=None):
        """What the tarball's layout says: 'hvm' without a kernel."""
        with self.open() as tarball:
            with TarStream(tarball) as tar:
                members = list(tar)
        return analyze(members, hypervisor=hypervisor,
                       virtualization_type=None).virtualization_type


class DownloadedTarball(UserTarball):
    """A tarball downloaded into the work area and already verified."""

    def __init__(self, path, url):
        UserTarball.__init__(self, path)
        self.label = url


class StoreStream(object):
    """
    A tarball read from the store as it is installed.  ``unverified()`` is
    told when the store gave nothing to check it by; ``done()`` when it has
    been read to its end.
    """

    kind = TARBALL
    path = None

    def __init__(self, stream, expected, name, unverified, done=None):
        self.stream = stream
        self.expected = expected
        self.name = name
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
        if not verify(self.stream.result(), self.expected, self.name):
            self.unverified()


def warn_unverified(name):
    """What the user is told of a download the store gave nothing to check
    by (a store's choice, not an attack: warned, not refused)."""
    warn('the store gives no size or checksum for image "{0}", so the '
         'download could not be verified'.format(name))


class Fetch(object):
    """
    How files are read from the store for one install: its ``open_url``,
    the progress bars, the pace the store must keep (a download.Pace), and
    who is told when the store gave nothing to check a file by.  Each file
    is held to the size the store gives it, else to the most its kind may
    have (``size_limit`` of a CatalogImage or a DiskImage).
    """

    def __init__(self, open_url, progress, unverified, pace):
        self.open_url = open_url
        self.progress = progress
        self.unverified = unverified
        self.pace = pace

    def to_file(self, expected, url, path, name, what='tarball'):
        """
        Download ``url`` to ``path`` in the work area (reusing a copy an
        earlier run kept there if it still checks) and verify it against
        ``expected`` (size and digests).
        """
        sha512 = getattr(expected, 'sha512', None) is not None
        try:
            kept = file_result(path, sha512)
        except (IOError, OSError):
            kept = None
        if kept is not None:
            try:
                checks = verify(kept, expected, name, what)
            except IntegrityError:  # verify removed it: ours, not the one
                checks = None
            if checks:
                LOG.debug('reusing %s, kept by an earlier run', path)
                return path
            remove_if_present(path)  # ours, but nothing proves it is it
        LOG.debug('downloading %s to %s before installing it', url, path)
        bar = self.progress('downloading', expected.size)
        result = download(self.open_url, url, path,
                          expected_size=expected.size,
                          progress=lambda done, total: bar.update(done),
                          pace=self.pace, sha512=sha512,
                          limit=expected.size_limit)
        bar.finish()
        if not verify(result, expected, name, what):
            self.unverified(name)
        return path

    def stream(self, expected, url, label):
        """A download of ``url`` as a stream, with one progress bar (the
        download paces the whole install)."""
        LOG.debug('installing %s as it streams from the store', url)
        bar = self.progress(label, expected.size)
        stream = DownloadStream(
            self.open_url, url, expected_size=expected.size,
            progress=lambda done, total: bar.update(done), pace=self.pace,
            limit=expected.size_limit,
            hashes=Hashes(sha512=getattr(expected, 'sha512', None)
                          is not None))
        return stream, bar

    def head(self, url, count):
        """The first ``count`` bytes of ``url`` (a Range request)."""
        response = self.open_url(url, {'Range': 'bytes=0-{0}'.format(
            count - 1), 'Accept-Encoding': 'identity'})
        try:
            data = b''
            for chunk in response.iter_content(count):
                data += chunk
                if len(data) >= count:
                    break
            return data[:count]
        finally:
            response.close()


def image_source(fetch, plan, image, work_area, needs_file,
                 local_tarball=None):
    """
    Where the image of ``plan`` is read from: the ``local_tarball`` (-t,
    ``image`` None); or, from the store, its tarball or its whole-disk image
    (``plan.disk``), straight off the network into the target where it can
    be (nothing on disk but bundle parts), unless -d keeps a copy or the
    target needs a file (``needs_file``: euca2ools reads each member in a
    pass of its own).
    """
    if image is None:
        return UserTarball(local_tarball)
    if plan.disk:
        return disk_source(fetch, image, work_area, needs_file)
    return tarball_source(fetch, image, work_area, needs_file)


def tarball_source(fetch, image, work_area, needs_file):
    """A store image's tarball: streamed, or downloaded first when -d keeps
    it or the target needs a file."""
    if work_area.keeps_downloads or needs_file:
        path = fetch.to_file(image, image.location,
                             work_area.download_path(image.location),
                             image.name)
        return DownloadedTarball(path, image.location)
    stream, bar = fetch.stream(image, image.location,
                               'downloading and bundling')
    return StoreStream(stream, image, image.name,
                       lambda: fetch.unverified(image.name), done=bar.finish)


# --------------------------------------------------------------- disks

class DiskMember(collections.namedtuple('DiskMember',
                                        'name size stream file_path')):
    """The raw disk of a DiskSource: what a target stores as the machine
    image (``file_path`` when it is a file on disk)."""
    __slots__ = ()


class DiskSource(object):
    """A whole-disk image, as one raw disk to bundle as an HVM image."""

    kind = DISK
    path = None

    def __init__(self, name, label, size, stream=None, file_path=None,
                 finish=None):
        self.name = name
        self.label = label
        self.size = size
        self._stream = stream
        self.file_path = file_path
        self._finish = finish
        self._file = None

    def member(self):
        if self.file_path is not None:
            self._file = io.open(self.file_path, 'rb')
            return DiskMember(self.name, self.size, self._file,
                              self.file_path)
        return DiskMember(self.name, self.size, self._stream, None)

    def finish(self):
        if self._file is not None:
            self._file.close()
        if self._finish is not None:
            self._finish()


def disk_source(fetch, image, work_area, needs_file):
    """
    The raw disk of a store image's whole-disk image (``image.disk``):
    checked against the 10 GiB limit before downloading when its size is
    known, verified against the store's digests before anything is
    registered.
    """
    disk = image.disk
    name = os.path.basename(disk.location.split('?', 1)[0]) or image.name
    if disk.compression == 'xz' and name.endswith('.xz'):
        name = name[:-3]
    raw_size = disk.virtual_size
    if raw_size is None and disk.disk_format == 'raw' and \
            not disk.compression:
        raw_size = disk.size
    if disk.disk_format == 'qcow2' and raw_size is None and \
            not disk.compression:
        # Its header says, in its first bytes: refuse before downloading.
        raw_size = qcow2_virtual_size(fetch.head(disk.location,
                                                 QCOW2_HEADER_BYTES))
        if raw_size is None:
            raise DiskImageError('{0} is not a qcow2 image (its header is '
                                 'not one)'.format(disk.location))
    check_raw_size(raw_size, disk.location)
    if disk.disk_format not in ('raw', 'qcow2'):
        raise DiskImageError('{0} is a {1} image; only raw and qcow2 ones '
                             'can be installed'.format(disk.location,
                                                       disk.disk_format))
    unpacked_limit = _unpacked_limit(disk, raw_size)
    streamable = disk.disk_format == 'raw' and raw_size is not None
    if streamable and not (work_area.keeps_downloads or needs_file):
        stream, bar = fetch.stream(disk, disk.location,
                                   'downloading and bundling')
        reader = xz_reader(stream, unpacked_limit) \
            if disk.compression == 'xz' else stream

        def finish():
            if reader is not stream:
                # To its very end: no byte past the disk, and xz's own
                # check of the last block.
                try:
                    for _ in iter(lambda: reader.read(CHUNK_SIZE), b''):
                        pass
                except InflateError as err:
                    raise DiskImageError(u'{0}: {1}'.format(disk.location,
                                                            err))
                finally:
                    reader.close()
            for _ in stream.chunks():
                pass
            bar.finish()
            if not verify(stream.result(), disk, image.name, 'disk image'):
                fetch.unverified(image.name)
        return DiskSource(name, disk.location, raw_size, stream=reader,
                          finish=finish)
    path = fetch.to_file(disk, disk.location,
                         work_area.download_path(disk.location), image.name,
                         'disk image')
    raw = os.path.join(work_area.run_dir, 'disk.raw')
    if disk.compression == 'xz':
        unpacked = raw if disk.disk_format == 'raw' else \
            os.path.join(work_area.run_dir, 'disk.qcow2')
        with io.open(path, 'rb') as packed:
            size = decompress_to(packed, unpacked, unpacked_limit,
                                 disk.location)
        path = unpacked
    else:
        size = os.path.getsize(path)
    if disk.disk_format == 'qcow2':
        size = convert_qcow2(path, raw, disk.location, lambda virtual:
                             _check_disk_size(image, disk, virtual))
        path = raw
    _check_disk_size(image, disk, size)
    return DiskSource(name, disk.location, size, file_path=path)


def _unpacked_limit(disk, raw_size):
    """What an xz disk file may inflate to, held while it inflates: the raw
    disk the store describes, else the most a raw disk or a qcow2 file may
    be."""
    if disk.disk_format == 'qcow2':
        return DISK_FILE
    if raw_size is not None:
        return SizeLimit(raw_size, 'disk image the store describes')
    return SizeLimit(MAX_IMAGE_SIZE, 'disk image')


def _check_disk_size(image, disk, size):
    if disk.virtual_size is not None and size != disk.virtual_size:
        raise EustoreError('the disk image of "{0}" is {1} bytes where the '
                           'store says {2}; tell its operator'.format(
                               image.name, size, disk.virtual_size))
