# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
BundleWriter: turn an image stream into the encrypted parts and the signed
manifest of an S3-backed bundle (docs/formats.md, "The EC2 S3-backed bundle").

    image --tar--> SHA-1 (image digest)
               \\-> parallel gzip --> AES-128-CBC --> parts (SHA-1 each)

The image is read once, front to back, so it may be a stream still being
downloaded.  A background thread runs the pipeline; parts are handed to the
caller through a generator as they are finished, so uploading overlaps with
compressing.  Disk use is bounded: a part file may only be created while
fewer than ``max_pending_parts + 1`` part files exist, counting the one the
caller holds, so when the caller is slow the pipeline stops once
``max_pending_parts`` finished parts are waiting.  Memory is bounded by a few
compression blocks per thread.

Part files are named like euca2ools names them: ``<prefix>.part.NN``, the
index zero-padded to at least two digits (``.part.00`` ... ``.part.99``,
``.part.100``); the manifest lists the same names.
"""

from __future__ import absolute_import, division, print_function

import collections
import errno
import hashlib
import multiprocessing
import os
import re
import shutil
import stat
import sys
import tempfile
import threading

from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
import six
from six.moves import queue

from eustore_plugin import __version__
from eustore_plugin.bundle import credentials
from eustore_plugin.bundle.errors import (BundleError, ImageSourceError,
                                          ManifestError)
from eustore_plugin.bundle.manifest import (
    DEFAULT_MACHINE_BLOCK_DEVICE_MAPPINGS, IMAGE_TYPES, ManifestPart,
    build_manifest, image_xml, machine_configuration_xml)
from eustore_plugin.bundle.pgzip import (COMPRESSION_LEVELS,
                                         DEFAULT_BLOCK_SIZE, Deflater,
                                         ParallelGzipWriter, deflater_for)
from eustore_plugin.bundle.tarstream import iter_tar_stream
from eustore_plugin.limits import MAX_IMAGE_SIZE

DEFAULT_PART_SIZE = 10485760
# Part names add ".part.NNNN" and S3 keys may have 1024 bytes; 200 leaves
# room for a key prefix and keeps the tar header small.
MAX_PREFIX_LENGTH = 200
BUNDLER_NAME = 'eustore-plugin'
BUNDLER_RELEASE = '0'
AES_BLOCK = 16
# How often a waiting consumer wakes up; lets Ctrl-C through on Python 2,
# whose blocking Queue.get cannot be interrupted.
_POLL_SECONDS = 0.5


class BundlePart(collections.namedtuple('BundlePart',
                                        'index filename path size sha1')):
    """A finished part file: ``path`` holds ``size`` bytes whose hex SHA-1
    is ``sha1``; upload it under ``filename``."""
    __slots__ = ()


def part_filename(prefix, index):
    return '{0}.part.{1:02d}'.format(prefix, index)


def default_thread_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return multiprocessing.cpu_count()


class _Cancelled(Exception):
    """The consumer went away; the pipeline thread stops quietly."""


class _PipelineState(object):
    """What the pipeline thread and the consumer's generator share: the
    part-file slots, the files created so far, and the event queue."""

    def __init__(self, slot_limit):
        self.condition = threading.Condition()
        self.slot_limit = slot_limit
        self.slots_in_use = 0
        self.cancelled = False
        self.files = set()
        self.events = queue.Queue()

    def acquire_slot(self):
        with self.condition:
            while self.slots_in_use >= self.slot_limit and \
                    not self.cancelled:
                self.condition.wait()
            if self.cancelled:
                raise _Cancelled()
            self.slots_in_use += 1

    def release_slot(self):
        with self.condition:
            self.slots_in_use -= 1
            self.condition.notify_all()

    def cancel(self):
        with self.condition:
            self.cancelled = True
            self.condition.notify_all()

    def next_event(self):
        while True:
            try:
                return self.events.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue

    def delete_file(self, path):
        try:
            os.unlink(path)
        except OSError as err:
            if err.errno != errno.ENOENT:
                raise
        with self.condition:
            self.files.discard(path)

    def delete_all_files(self):
        with self.condition:
            paths = list(self.files)
        for path in paths:
            self.delete_file(path)


class _PartSink(object):
    """Cuts the encrypted stream into part files, hashing each."""

    def __init__(self, state, prefix, workdir, part_size):
        self._state = state
        self._prefix = prefix
        self._workdir = workdir
        self._part_size = part_size
        self._file = None
        self._path = None
        self._sha1 = None
        self._size = 0
        self.parts = []
        self.total_size = 0

    def write(self, data):
        while data:
            if self._file is None:
                self._open_part()
            room = self._part_size - self._size
            piece = data if len(data) <= room else data[:room]
            data = data[len(piece):] if len(piece) < len(data) else b''
            try:
                self._file.write(piece)
            except (IOError, OSError) as err:
                raise BundleError(
                    'writing part file {0} failed: {1}; free some space or '
                    'use another work directory'.format(self._path, err))
            self._sha1.update(piece)
            self._size += len(piece)
            if self._size == self._part_size:
                self._finish_part()

    def close(self):
        if self._file is not None:
            self._finish_part()

    def abort(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open_part(self):
        self._state.acquire_slot()
        index = len(self.parts)
        path = os.path.join(self._workdir,
                            part_filename(self._prefix, index))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         getattr(os, 'O_BINARY', 0), 0o600)
        except OSError as err:
            self._state.release_slot()
            if err.errno == errno.EEXIST:
                raise BundleError(
                    'part file {0} already exists; remove what an earlier '
                    'run left behind or use another work directory'
                    .format(path))
            raise BundleError('cannot create part file {0}: {1}'
                              .format(path, err.strerror))
        with self._state.condition:
            self._state.files.add(path)
        self._file = os.fdopen(fd, 'wb')
        self._path = path
        self._sha1 = hashlib.sha1()
        self._size = 0

    def _finish_part(self):
        try:
            self._file.close()
        except (IOError, OSError) as err:
            raise BundleError(
                'writing part file {0} failed: {1}; free some space or use '
                'another work directory'.format(self._path, err))
        self._file = None
        index = len(self.parts)
        part = BundlePart(index, part_filename(self._prefix, index),
                          self._path, self._size, self._sha1.hexdigest())
        self.parts.append(part)
        self.total_size += part.size
        self._state.events.put(('part', part))


class _CbcEncryptor(object):
    """AES-128-CBC with PKCS#7 padding, as ``openssl enc -aes-128-cbc``.

    Padding is added by hand at the end (we count the bytes) rather than
    through a padder, which would copy every buffer once more.
    """

    def __init__(self, key, iv):
        cipher = Cipher(algorithms.AES(key), modes.CBC(iv),
                        backend=default_backend())
        self._encryptor = cipher.encryptor()
        self._length = 0

    def update(self, data):
        self._length += len(data)
        return self._encryptor.update(data)

    def finish(self):
        pad = AES_BLOCK - self._length % AES_BLOCK
        return (self._encryptor.update(six.int2byte(pad) * pad) +
                self._encryptor.finalize())


def _check_prefix(prefix):
    if not isinstance(prefix, six.string_types) or not prefix or \
            prefix in ('.', '..') or re.search(r'[/\\\x00]', prefix):
        raise BundleError(
            'bundle prefix {0!r} is not a plain file name; use letters, '
            'digits, dots, dashes and underscores'.format(prefix))
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise BundleError(
            'bundle prefix {0!r}... is longer than {1} characters; use a '
            'shorter image name'.format(prefix[:40], MAX_PREFIX_LENGTH))
    return prefix


def _check_account_id(account_id):
    text = six.text_type(account_id).replace('-', '').strip()
    if not re.match(r'^[0-9]{12}$', text):
        raise BundleError(
            'account id {0!r} is not 12 digits; pass the account number '
            '(dashes are allowed)'.format(account_id))
    return text


def _check_compression(compression, compresslevel):
    if compresslevel is not None:
        if compression is not None:
            raise BundleError('give compression or compresslevel, not both')
        if compresslevel not in range(0, 10):
            raise BundleError('compresslevel must be 0-9, not {0!r}'
                              .format(compresslevel))
        return Deflater('zlib', compresslevel)
    if isinstance(compression, Deflater):
        return compression
    if compression is not None and compression not in COMPRESSION_LEVELS:
        raise BundleError('compression must be one of {0}, not {1!r}'.format(
            ', '.join(COMPRESSION_LEVELS), compression))
    return deflater_for(compression)


class BundleWriter(object):
    """Bundles one image at a time; see the module docstring.

    Certificates and the key may be PEM bytes/text, file paths or loaded
    ``cryptography`` objects.  Everything that can be checked before reading
    the image is checked here, including that ``user_private_key`` belongs
    to ``user_cert``.

    ``compression`` is one of :data:`COMPRESSION_LEVELS` (``'fast'``,
    ``'balanced'``, ``'small'``; see ``pgzip.LEVELS``), compressed with isal
    where it imports and zlib otherwise, or a ``pgzip.Deflater`` for an
    exact backend and level; by default :data:`DEFAULT_COMPRESSION`
    (``'balanced'`` with isal, ``'fast'`` with zlib: the measurements are
    in pgzip).  ``compresslevel`` (0-9), if given instead, is a zlib
    level, as before there were names; 0 stores.
    """

    def __init__(self, prefix, image_type, architecture, account_id,
                 user_cert, user_private_key, cloud_cert,
                 part_size=DEFAULT_PART_SIZE, workdir=None,
                 max_pending_parts=2, threads=None,
                 compression=None, compresslevel=None,
                 block_size=DEFAULT_BLOCK_SIZE):
        self.prefix = _check_prefix(prefix)
        if image_type not in IMAGE_TYPES:
            raise BundleError('image type {0!r} is not one of {1}'
                              .format(image_type, ', '.join(IMAGE_TYPES)))
        self.image_type = image_type
        if not architecture or not re.match(r'^[A-Za-z0-9_.-]+$',
                                            architecture):
            raise BundleError('architecture {0!r} is not a name like i386 or '
                              'x86_64'.format(architecture))
        self.architecture = architecture
        self.account_id = _check_account_id(account_id)
        self._user_cert = credentials.load_certificate(user_cert,
                                                       'user certificate')
        self._private_key = credentials.load_private_key(
            user_private_key, 'user private key')
        credentials.check_key_matches_certificate(self._private_key,
                                                  self._user_cert)
        self._cloud_cert = credentials.load_certificate(cloud_cert,
                                                        'cloud certificate')
        if not isinstance(part_size, six.integer_types) or part_size < 1:
            raise BundleError('part size must be a positive number of bytes, '
                              'not {0!r}'.format(part_size))
        self.part_size = part_size
        if workdir is not None and not os.path.isdir(workdir):
            raise BundleError('work directory {0} does not exist; create it '
                              'or leave it unset'.format(workdir))
        self.workdir = workdir
        if not isinstance(max_pending_parts, six.integer_types) or \
                max_pending_parts < 0:
            raise BundleError('max_pending_parts must be 0 or more, not {0!r}'
                              .format(max_pending_parts))
        self.max_pending_parts = max_pending_parts
        self.threads = default_thread_count() if threads is None else threads
        if not isinstance(self.threads, six.integer_types) or \
                self.threads < 1:
            raise BundleError('threads must be 1 or more, not {0!r}'
                              .format(threads))
        self.deflater = _check_compression(compression, compresslevel)
        self.block_size = block_size
        self.manifest_filename = '{0}.manifest.xml'.format(prefix)
        self._result = None
        self._state = None

    # Results of the last finished bundle() run.
    @property
    def image_digest(self):
        """Hex SHA-1 of the tar stream; None until bundle() has finished."""
        return self._result['digest'] if self._result else None

    @property
    def image_size(self):
        return self._result['size'] if self._result else None

    @property
    def bundled_size(self):
        """Total bytes of all parts."""
        return self._result['bundled_size'] if self._result else None

    @property
    def parts(self):
        """ManifestParts (index, filename, digest) of the finished bundle."""
        return list(self._result['parts']) if self._result else None

    def bundle(self, fileobj, size=None, hold_parts=False):
        """Start bundling; returns a generator of BundleParts.

        ``fileobj`` is a readable binary stream (need not be seekable) or a
        path; ``size`` its declared byte count (may be left out for paths
        and regular files).  Each part's file is deleted when the generator
        is resumed after yielding it, unless ``hold_parts``: then it stays
        until the caller passes it to :meth:`release` (a consumer uploading
        several parts at once), and counts against ``max_pending_parts``
        until then.  Size problems and unreadable paths are reported here,
        before anything is read.
        """
        self._result = None
        close_fileobj = False
        if isinstance(fileobj, six.string_types):
            path = fileobj
            try:
                fileobj = open(path, 'rb')
            except (IOError, OSError) as err:
                raise ImageSourceError(
                    'cannot read image file {0}: {1}; check the path and its '
                    'permissions'.format(path, err.strerror or err))
            close_fileobj = True
        try:
            size = self._check_size(fileobj, size)
        except BaseException:
            if close_fileobj:
                fileobj.close()
            raise
        return self._bundle_parts(fileobj, size, close_fileobj, hold_parts)

    def release(self, part):
        """Delete a part held by the caller (``hold_parts``), freeing its
        place for the next one."""
        state = self._state
        if state is not None and part.path in state.files:
            state.delete_file(part.path)
            state.release_slot()

    def _check_size(self, fileobj, size):
        if size is None:
            try:
                status = os.fstat(fileobj.fileno())
            except (AttributeError, IOError, OSError, ValueError):
                status = None
            # A pipe's st_size is 0 whatever it holds.
            if status is None or not stat.S_ISREG(status.st_mode):
                raise ImageSourceError(
                    'the image size must be given for a stream that is not a '
                    'regular file')
            size = status.st_size
        if not isinstance(size, six.integer_types) or size < 0:
            raise ImageSourceError('image size must be a byte count, not {0!r}'
                                   .format(size))
        if size > MAX_IMAGE_SIZE:
            raise ImageSourceError(
                'the image is {0} bytes, over the 10 GiB ({1} bytes) that '
                'S3-backed images may hold; use a smaller image'
                .format(size, MAX_IMAGE_SIZE))
        return size

    def _bundle_parts(self, fileobj, size, close_fileobj, hold_parts):
        key, iv = os.urandom(16), os.urandom(16)
        own_workdir = self.workdir is None
        workdir = tempfile.mkdtemp(prefix='eustore-bundle-') \
            if own_workdir else self.workdir
        state = self._state = _PipelineState(self.max_pending_parts + 1)
        sink = _PartSink(state, self.prefix, workdir, self.part_size)
        thread = threading.Thread(
            target=self._run_pipeline,
            args=(state, sink, fileobj, size, key, iv),
            name='bundle-pipeline')
        thread.daemon = True
        finished = False
        try:
            thread.start()
            while True:
                kind, value = state.next_event()
                if kind == 'part':
                    try:
                        yield value
                    finally:
                        if not hold_parts:
                            self.release(value)
                elif kind == 'done':
                    finished = True
                    break
                else:
                    six.reraise(*value)
        finally:
            if not finished:
                state.cancel()
                if thread.ident is not None:
                    thread.join()
                state.delete_all_files()
            if own_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            if close_fileobj:
                fileobj.close()
        self._result = {
            'digest': value,
            'size': size,
            'bundled_size': sink.total_size,
            'parts': [ManifestPart(part.index, part.filename, part.sha1)
                      for part in sink.parts],
            'ec2_encrypted_key': credentials.encrypt_hex_text(
                self._cloud_cert, key),
            'user_encrypted_key': credentials.encrypt_hex_text(
                self._user_cert, key),
            'ec2_encrypted_iv': credentials.encrypt_hex_text(
                self._cloud_cert, iv),
            'user_encrypted_iv': credentials.encrypt_hex_text(
                self._user_cert, iv),
        }

    def _run_pipeline(self, state, sink, fileobj, size, key, iv):
        """Body of the pipeline thread; reports through ``state.events``:
        ('part', BundlePart)..., then ('done', digest) or ('error',
        exc_info)."""
        compressor = None
        try:
            encryptor = _CbcEncryptor(key, iv)
            compressor = ParallelGzipWriter(
                lambda data: sink.write(encryptor.update(data)),
                deflater=self.deflater, threads=self.threads,
                block_size=self.block_size)
            tar_sha1 = hashlib.sha1()
            for chunk in iter_tar_stream(fileobj, size, self.prefix,
                                         self.block_size):
                if state.cancelled:
                    raise _Cancelled()
                tar_sha1.update(chunk)
                compressor.write(chunk)
            compressor.close()
            sink.write(encryptor.finish())
            sink.close()
            state.events.put(('done', tar_sha1.hexdigest()))
        except _Cancelled:
            state.events.put(('cancelled', None))
        except BaseException:  # pylint: disable=broad-except
            state.events.put(('error', sys.exc_info()))
        finally:
            if compressor is not None:
                compressor.abort()
            sink.abort()

    def manifest(self, kernel_id=None, ramdisk_id=None,
                 block_device_mappings=None, product_codes=None):
        """The signed manifest of the last finished bundle, as bytes.

        ``block_device_mappings``: (virtual, device) pairs; machine images
        default to ec2-bundle-image's ami/root/ephemeral0/swap scheme.
        """
        if self._result is None:
            raise ManifestError(
                'there is no finished bundle to describe; iterate bundle() '
                'to its end first')
        if block_device_mappings is None:
            block_device_mappings = DEFAULT_MACHINE_BLOCK_DEVICE_MAPPINGS \
                if self.image_type == 'machine' else ()
        result = self._result
        config_xml = machine_configuration_xml(
            self.architecture, kernel_id, ramdisk_id, block_device_mappings,
            product_codes or ())
        image = image_xml(
            self.prefix, self.account_id, self.image_type, result['digest'],
            result['size'], result['bundled_size'],
            result['ec2_encrypted_key'], result['user_encrypted_key'],
            result['ec2_encrypted_iv'], result['user_encrypted_iv'],
            result['parts'])
        return build_manifest(
            config_xml, image,
            lambda data: credentials.sign_sha1(self._private_key, data),
            BUNDLER_NAME, __version__, BUNDLER_RELEASE)
