# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Whole-disk images from a store (simplestreams' disk1.img, virt-builder
templates) made into the raw disk an HVM bundle holds.

- xz is decompressed as a stream, with no temporary copy (inflate.py:
  Python's lzma on Python 3, the ``xz`` command on Python 2.7, which has
  no lzma), held while it inflates to the size the store gives the disk,
  else to the 10 GiB a disk may have.
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

import six

from eustore_plugin.errors import EustoreError
from eustore_plugin.images.inflate import InflateError, lzma, open_xz_reader
from eustore_plugin.limits import MAX_IMAGE_SIZE

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
            '{0} is a disk of {1} bytes ({2:.1f} GiB), over the 10 GiB '
            'these tools install (what EC2 takes in an S3-backed image, and '
            'the most a store may make them read); it cannot be '
            'installed'.format(
                what, size, size / float(1 << 30)))


def qcow2_virtual_size(header):
    """The virtual size a qcow2 header gives, or None if it is not one."""
    if len(header) < QCOW2_HEADER_BYTES or header[:4] != QCOW2_MAGIC:
        return None
    return struct.unpack('>Q', header[24:32])[0]


# ---------------------------------------------------------------------- xz

def xz_reader(fileobj, limit):
    """A readable file of ``fileobj``'s xz-decompressed bytes, held to
    ``limit`` (a SizeLimit) as they come (inflate.open_xz_reader)."""
    if lzma is None and not which('xz'):
        raise DiskImageError('the xz command is needed to unpack this image '
                             'on Python 2.7 (Debian: apt-get install '
                             'xz-utils)')
    return open_xz_reader(fileobj, limit)


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


def convert_qcow2(path, dest, what, check_size=None):
    """Convert the qcow2 ``path`` into the sparse raw file ``dest``;
    returns the raw size.  ``check_size(size)``, if given, may refuse the
    size the qcow2 says before anything is converted."""
    size = inspect_qcow2(path, what)
    check_raw_size(size, what)
    if check_size is not None:
        check_size(size)
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


def decompress_to(fileobj, dest, limit, what):
    """Write ``fileobj``'s xz-decompressed bytes to ``dest``, held to
    ``limit`` (a SizeLimit) as they come; their size.  ``what`` names the
    image in messages."""
    size = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                 getattr(os, 'O_NOFOLLOW', 0), 0o600)
    zeros = b'\0' * _CHUNK
    with os.fdopen(fd, 'wb') as out:
        reader = xz_reader(fileobj, limit)
        try:
            for chunk in iter(lambda: reader.read(_CHUNK), b''):
                size += len(chunk)
                if chunk == zeros[:len(chunk)]:
                    out.seek(len(chunk), os.SEEK_CUR)  # sparse, as disks are
                else:
                    out.write(chunk)
            out.truncate(size)
        except InflateError as err:
            raise DiskImageError(u'{0}: {1}'.format(what, err))
        finally:
            reader.close()
    return size
