# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Whole-disk images from a store (simplestreams' disk1.img, virt-builder
templates) made into the raw disk an HVM bundle holds.

- xz is decompressed as a stream, with no temporary copy: Python's lzma on
  Python 3, the ``xz`` command on Python 2.7 (which has no lzma).
- qcow2 needs random access, so it is converted from a file, with
  ``qemu-img convert -O raw`` (Debian's qemu-utils), into a sparse raw file.
  A qcow2 file is attacker input too: one naming a backing file or an
  external data file would make qemu-img read a file of the user's host
  into the image (and so into their cloud), so such files are refused
  before conversion; formats are never probed (``-f qcow2``).

The bundle format holds at most 10 GiB: a disk whose raw size is larger is
refused before it is downloaded when the size is known then (virt-builder
says it; a qcow2 header says it in its first bytes, read with a Range
request), else before it is converted.
"""

from __future__ import absolute_import

import json
import logging
import os
import struct
import subprocess
import threading

import six

from eustore_plugin.bundle.writer import MAX_IMAGE_SIZE
from eustore_plugin.errors import EustoreError

try:
    import lzma
except ImportError:  # Python 2.7
    lzma = None

try:
    from shutil import which
except ImportError:  # Python 2.7
    from distutils.spawn import find_executable as which

LOG = logging.getLogger(__name__)

QCOW2_MAGIC = b'QFI\xfb'
# The header's first fields: magic, version, backing file offset and size,
# cluster bits, then the virtual size (big-endian, at byte 24).
QCOW2_HEADER_BYTES = 32
_CHUNK = 1 << 20


class DiskImageError(EustoreError):
    pass


def check_raw_size(size, what):
    """Refuse a raw disk over the bundle format's limit, naming its size."""
    if size is not None and size > MAX_IMAGE_SIZE:
        raise DiskImageError(
            '{0} is a disk of {1} bytes ({2:.1f} GiB), over the 10 GiB an '
            'S3-backed image may hold; it cannot be installed'.format(
                what, size, size / float(1 << 30)))


def qcow2_virtual_size(header):
    """The virtual size a qcow2 header gives, or None if it is not one."""
    if len(header) < QCOW2_HEADER_BYTES or header[:4] != QCOW2_MAGIC:
        return None
    return struct.unpack('>Q', header[24:32])[0]


# ---------------------------------------------------------------------- xz

class _LzmaReader(object):
    """xz decompressed as it is read (Python 3)."""

    def __init__(self, fileobj):
        self._source = fileobj
        self._decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        self._pending = b''

    def read(self, size=-1):
        while size < 0 or len(self._pending) < size:
            if self._decompressor.eof:
                # Concatenated streams, as xz(1) reads them.
                rest = self._decompressor.unused_data
                if not rest:
                    rest = self._source.read(_CHUNK)
                    if not rest:
                        break
                self._decompressor = lzma.LZMADecompressor(
                    format=lzma.FORMAT_XZ)
                self._feed(rest)
                continue
            data = self._source.read(_CHUNK)
            if not data:
                if not self._decompressor.eof:
                    raise DiskImageError('the xz image ends before its '
                                         'end; the download is truncated')
                break
            self._feed(data)
        if size < 0:
            data, self._pending = self._pending, b''
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def _feed(self, data):
        try:
            self._pending += self._decompressor.decompress(data)
        except lzma.LZMAError as err:
            raise DiskImageError('the image is not valid xz ({0})'.format(
                err))

    def close(self):
        pass


class _XzProcessReader(object):
    """xz decompressed by the xz command, fed from a thread (Python 2)."""

    def __init__(self, fileobj):
        if not which('xz'):
            raise DiskImageError('the xz command is needed to unpack this '
                                 'image on Python 2.7 (Debian: apt-get '
                                 'install xz-utils)')
        self._process = subprocess.Popen(['xz', '-dc'], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        self._error = []
        self._feeder = threading.Thread(target=self._feed, args=(fileobj,),
                                        name='xz-feeder')
        self._feeder.daemon = True
        self._feeder.start()

    def _feed(self, fileobj):
        try:
            for chunk in iter(lambda: fileobj.read(_CHUNK), b''):
                self._process.stdin.write(chunk)
        except BaseException as err:  # pylint: disable=broad-except
            self._error.append(err)
        finally:
            try:
                self._process.stdin.close()
            except (IOError, OSError):
                pass

    def read(self, size=-1):
        data = self._process.stdout.read(size) if size >= 0 else \
            self._process.stdout.read()
        if not data:
            self._feeder.join()
            if self._error:
                raise self._error[0]
            if self._process.wait() != 0:
                raise DiskImageError('the image is not valid xz ({0})'.format(
                    self._process.stderr.read().decode('utf-8', 'replace')
                    .strip()))
        return data

    def close(self):
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def xz_reader(fileobj):
    """A readable file of ``fileobj``'s xz-decompressed bytes."""
    return _LzmaReader(fileobj) if lzma is not None else \
        _XzProcessReader(fileobj)


# ------------------------------------------------------------------- qcow2

def _qemu_img():
    tool = which('qemu-img')
    if not tool:
        raise DiskImageError('qemu-img is needed to convert qcow2 images '
                             '(Debian: apt-get install qemu-utils)')
    return tool


def _run(argv):
    process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    out, err = process.communicate()
    return process.returncode, out, err.decode('utf-8', 'replace').strip()


def inspect_qcow2(path, what):
    """
    ``qemu-img info`` of a downloaded qcow2: its virtual size, after
    refusing what is not a qcow2 of its own (a backing file, an external
    data file).
    """
    status, out, err = _run([_qemu_img(), 'info', '--output=json', '-f',
                             'qcow2', path])
    if status != 0:
        raise DiskImageError('{0} is not a qcow2 image ({1})'.format(
            what, err.splitlines()[-1] if err else 'qemu-img failed'))
    try:
        info = json.loads(out.decode('utf-8'))
    except ValueError:
        raise DiskImageError('qemu-img could not describe {0}'.format(what))
    data = ((info.get('format-specific') or {}).get('data') or {})
    if info.get('backing-filename') or info.get('full-backing-filename'):
        raise DiskImageError(
            '{0} names a backing file ({1}), which would read a file of this '
            'machine into the image; refused'.format(
                what, info.get('backing-filename')))
    if data.get('data-file'):
        raise DiskImageError(
            '{0} names an external data file ({1}); refused'.format(
                what, data.get('data-file')))
    size = info.get('virtual-size')
    if not isinstance(size, six.integer_types) or size <= 0:
        raise DiskImageError('{0} has no usable virtual size'.format(what))
    return size


def convert_qcow2(path, dest, what):
    """Convert the qcow2 ``path`` into the sparse raw file ``dest``;
    returns the raw size."""
    size = inspect_qcow2(path, what)
    check_raw_size(size, what)
    LOG.debug('converting %s (qcow2, %d bytes virtual) to raw', path, size)
    status, _, err = _run([_qemu_img(), 'convert', '-q', '-f', 'qcow2',
                           '-O', 'raw', path, dest])
    if status != 0:
        raise DiskImageError('converting {0} to a raw disk failed ({1})'
                             .format(what, err.splitlines()[-1] if err
                                     else 'qemu-img failed'))
    raw = os.path.getsize(dest)
    if raw != size:
        raise DiskImageError('qemu-img made {0} bytes of {1} where it says '
                             '{2}'.format(raw, what, size))
    return size


def decompress_to(fileobj, dest):
    """Write ``fileobj``'s xz-decompressed bytes to ``dest``; its size."""
    reader = xz_reader(fileobj)
    size = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                 getattr(os, 'O_NOFOLLOW', 0), 0o600)
    zeros = b'\0' * _CHUNK
    with os.fdopen(fd, 'wb') as out:
        for chunk in iter(lambda: reader.read(_CHUNK), b''):
            size += len(chunk)
            if size > MAX_IMAGE_SIZE:
                raise DiskImageError('the image unpacks to more than 10 GiB; '
                                     'it cannot be installed')
            if chunk == zeros[:len(chunk)]:
                out.seek(len(chunk), os.SEEK_CUR)  # sparse, as disks are
            else:
                out.write(chunk)
        out.truncate(size)
    reader.close()
    return size
