# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Reading a gzip or xz stream front to back, fast and bounded: the tarball
side of an install or a publish, and xz-compressed disk images.

    tarfile.open(fileobj=open_gzip_reader(download), mode='r|',
                 bufsize=TAR_BUFSIZE)

:func:`open_gzip_reader` returns a readable binary file object that
inflates with ISA-L (the ``isal`` package) where it imports, several times
faster than zlib, and with zlib otherwise (Python 2.7, machines with no
isal wheel).  Inflating runs on a thread of its own, reading the source
too, so that the network, inflate and whoever parses the tar stream
overlap instead of taking turns (measured bundling 512 MiB on 2 cores:
as fast as inflating on the reader's thread, or up to 20% faster); at
most a few chunks wait between them, so memory stays bounded whatever the
stream's size.

It reads what gzip(1) reads: one member or several concatenated (each
checked against its CRC-32 and length), with zero bytes after the last
ignored, as tar and some stores pad.  What gzip(1) would only warn about
is refused here, since a tarball that is not exactly what was published is
not one to install: anything else after the last member.  Every problem
with the data itself, corrupt, truncated, empty or not gzip at all, is a
:class:`GzipDataError` (a ValueError, message one line); errors from the
source (a dropped connection, say) are raised as the source raised them.

Whatever the ratio of a stream, memory stays flat and work linear: each
step inflates at most one chunk, whatever is left of the input stays in
the decompressor for the next step (never copied again), and with a
``limit`` the stream is refused as soon as it inflates past it, not once
it has (docs/threat-model.md, "endless data").  :func:`open_xz_reader`
does the same for xz (Python's lzma, or the ``xz`` command on Python 2.7,
which has no lzma), with :class:`XzDataError`.  A tar stream's header
extensions (long names, pax headers, sparse maps), which tarfile reads
whole into memory, are held to :data:`~eustore_plugin.limits.TAR_HEADER`
(:class:`TarStream`).
"""

from __future__ import absolute_import, division

import errno
import io
import subprocess
import sys
import tarfile
import threading
import zlib

import six
from six.moves import queue

from eustore_plugin.bundle.tarstream import read_exactly
from eustore_plugin.limits import TAR_HEADER, TARBALL

try:
    import lzma
except ImportError:  # Python 2.7
    lzma = None

try:
    from isal import igzip_lib, isal_zlib
except ImportError:  # Python 2.7, or a machine with no isal wheel
    igzip_lib = isal_zlib = None

BACKENDS = ('isal', 'zlib') if isal_zlib is not None else ('zlib',)
DEFAULT_BACKEND = BACKENDS[0]
# Compressed bytes asked of the source at a time.  Small, because zlib
# copies what one inflate call leaves of its input for the next: a zero
# run inflates a thousandfold, so a large read would be copied a thousand
# times over.
READ_SIZE = 128 * 1024
# Inflated bytes handed on at a time; reads of a whole chunk are passed on
# uncopied.
CHUNK_SIZE = 1024 * 1024
# The ``bufsize`` to give tarfile over a reader: tarfile joins what it
# holds with each read and slices the result, so its copying grows with
# bufsize (1 MiB cost 3-5% more CPU than this when bundling 512 MiB; its
# default, 10 KiB, costs as much in calls).
TAR_BUFSIZE = 64 * 1024
# Chunks waiting between the inflating thread and the reader.
QUEUE_CHUNKS = 4
_POLL_SECONDS = 0.5
_GZIP_WBITS = 16 + 15
_END = object()


class InflateError(ValueError):
    """Compressed data that is corrupt, truncated, empty, not of its
    format at all, or that inflates past its limit; str() is one line."""


class GzipDataError(InflateError):
    """What is wrong with gzip data."""


class XzDataError(InflateError):
    """What is wrong with xz data."""


def open_gzip_reader(fileobj, threaded=True, backend=None,
                     read_size=READ_SIZE, chunk_size=CHUNK_SIZE,
                     limit=None):
    """
    A readable binary file object of what the gzip stream ``fileobj`` (a
    readable binary file object; it need not seek) holds.  ``threaded``
    inflates on a thread of its own; ``backend`` is ``'isal'`` or
    ``'zlib'`` (default: the best there is).  Close it when done: that
    stops the thread, once a read of ``fileobj`` under way has returned.
    ``fileobj`` is not closed; it is its owner's.  Read it to its end
    (``read()`` returns b'') before trusting it: the last member's CRC-32
    and length are checked there.  ``limit``: a
    :class:`~eustore_plugin.limits.SizeLimit` the inflated bytes are held
    to (GzipDataError past it).
    """
    backend = backend or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError('no inflate backend {0!r} here (there are: {1})'
                         .format(backend, ', '.join(BACKENDS)))
    member = _IsalMember if backend == 'isal' else _ZlibMember
    chunks = _bounded(_inflate(fileobj, member, read_size, chunk_size),
                      limit, 'gzip', GzipDataError)
    if threaded:
        chunks = _ThreadedChunks(chunks)
    return InflatedReader(chunks)


def open_xz_reader(fileobj, limit=None, read_size=READ_SIZE,
                   chunk_size=CHUNK_SIZE):
    """
    A readable binary file object of what the xz stream ``fileobj`` holds
    (several concatenated streams, with padding between them, as xz(1)
    reads them), inflated as it is read, at most ``chunk_size`` bytes a
    step, and held to ``limit`` (a SizeLimit).  Everything wrong with the
    data is an :class:`XzDataError`.  Close it when done; ``fileobj`` is
    its owner's.
    """
    chunks = _inflate_xz(fileobj, read_size, chunk_size) if lzma \
        is not None else _inflate_xz_command(fileobj, chunk_size)
    return InflatedReader(_bounded(chunks, limit, 'xz', XzDataError))


def _bounded(chunks, limit, kind, error):
    """``chunks``, refused with ``error`` once they add up to more than
    ``limit`` (None: unbounded)."""
    if limit is None:
        return chunks
    return _BoundedChunks(chunks, limit, kind, error)


class _BoundedChunks(object):
    """Chunks counted as they pass, refused past a SizeLimit."""

    def __init__(self, chunks, limit, kind, error):
        self._chunks = iter(chunks)
        self._limit = limit
        self._kind = kind
        self._error = error
        self._total = 0

    def __iter__(self):
        return self

    def __next__(self):
        chunk = next(self._chunks)
        self._total += len(chunk)
        if self._total > self._limit.size:
            self.close()
            raise self._error(
                'the {0} data inflates to more than the {1} bytes a {2} may '
                'have; it is not one to install'.format(
                    self._kind, self._limit.size, self._limit.what))
        return chunk

    next = __next__

    def close(self):
        closer = getattr(self._chunks, 'close', None)
        if closer is not None:
            closer()


class _IsalMember(object):
    """One gzip member, inflated by ISA-L.  Its decompressor keeps the
    input it has not used yet itself, so nothing is copied between calls;
    it checks the member's CRC-32 and length."""

    error = igzip_lib.error if igzip_lib is not None else None

    def __init__(self):
        self._decompressor = igzip_lib.IgzipDecompressor(
            flag=igzip_lib.DECOMP_GZIP)

    @property
    def needs_input(self):
        return self._decompressor.needs_input and \
            not self._decompressor.eof

    @property
    def ended(self):
        return self._decompressor.eof

    @property
    def unused_data(self):
        return self._decompressor.unused_data

    def decompress(self, data, limit):
        return self._decompressor.decompress(data, limit)


class _ZlibMember(object):
    """One gzip member, inflated by zlib."""

    error = zlib.error

    def __init__(self):
        self._decompressor = zlib.decompressobj(_GZIP_WBITS)
        self._tail = b''
        # Output may be pending inside zlib when a call filled its limit.
        self._full = False
        self.ended = False
        self.unused_data = b''

    @property
    def needs_input(self):
        return not (self.ended or self._tail or self._full)

    def decompress(self, data, limit):
        """Inflate ``data``, or with b'' go on with what is held."""
        out = self._decompressor.decompress(data or self._tail, limit)
        self._full = len(out) == limit
        decompressor = self._decompressor
        ended = getattr(decompressor, 'eof', None)
        if ended is None:
            # Python 2's zlib has no ``eof``: a member has ended once input
            # is left over after it (see finish for the last one).
            ended = bool(decompressor.unused_data)
        if ended:
            # All that follows the member; zlib may leave a stale copy of
            # some of it in unconsumed_tail.
            self.ended = True
            self.unused_data = decompressor.unused_data
            self._tail = b''
        else:
            self._tail = decompressor.unconsumed_tail
        return out

    def finish(self):
        """At the end of the input: whether the member is complete."""
        if not self.ended and getattr(self._decompressor, 'eof',
                                      None) is None:
            # On Python 2 a byte more tells: it is left over only if the
            # member is complete (if it is not, it is truncated whatever
            # the byte does to it).
            try:
                self._decompressor.decompress(b'\0')
            except zlib.error:
                return False
            self.ended = bool(self._decompressor.unused_data)
        return self.ended


def _inflate(source, member_class, read_size, chunk_size):
    """Inflated chunks of about ``chunk_size`` bytes (but the last) of the
    gzip stream read from ``source``."""
    given = 0       # compressed bytes handed to a decompressor so far
    members = 0
    member = None
    padding = False
    pending = b''
    pieces = []
    held = 0
    while True:
        if held >= chunk_size:
            yield pieces[0] if len(pieces) == 1 else b''.join(pieces)
            pieces = []
            held = 0
        if member is None or member.needs_input:
            if not pending:
                if pieces:
                    # Before waiting for more input, hand on what is
                    # inflated: a stream that pauses (a store, near the end
                    # of its file) must not hold back what it already sent.
                    yield pieces[0] if len(pieces) == 1 else \
                        b''.join(pieces)
                    pieces = []
                    held = 0
                pending = source.read(read_size)
                if not pending:
                    break
        if member is None:
            if members and pending[:1] == b'\0':
                stripped = pending.lstrip(b'\0')
                given += len(pending) - len(stripped)
                pending = stripped
                padding = True
                continue
            if padding or (members and len(pending) >= 2 and
                           pending[:2] != b'\x1f\x8b'):
                raise GzipDataError(
                    'the gzip data has something other than gzip after its '
                    'end, at byte {0}; the file is damaged'.format(given))
            member = member_class()
        data = b''
        if member.needs_input:
            data, pending = pending, b''
            given += len(data)
        try:
            # Bounded, so that a zero run does not inflate all at once.
            out = member.decompress(data, chunk_size - held)
        except member.error as err:
            raise GzipDataError('the gzip data is corrupt at or before byte '
                                '{0} ({1}); the file is damaged'.format(
                                    given, _reason(err)))
        if member.ended:
            pending = member.unused_data
            given -= len(pending)
            member = None
            members += 1
        if out:
            pieces.append(out)
            held += len(out)
    if pieces:
        yield b''.join(pieces)
    if member is not None:
        if not getattr(member, 'finish', lambda: member.ended)():
            raise GzipDataError('the gzip data ends early, after {0} bytes; '
                                'the file is truncated'.format(given))
        members += 1
    if not members:
        raise GzipDataError('there is no gzip data (the file is empty)')


def _reason(err):
    """zlib's and isal's messages, without their "Error -3 while
    decompressing data:" prefixes."""
    text = str(err)
    return text.split(': ', 1)[-1] if ': ' in text else \
        text.split(' ', 2)[-1] if text.startswith('Error ') else text


def _inflate_xz(source, read_size, chunk_size):
    """Inflated chunks, at most ``chunk_size`` bytes each, of the xz
    stream read from ``source`` (Python 3's lzma)."""
    given = 0       # compressed bytes handed to a decompressor so far
    streams = 0
    decompressor = None
    pending = b''
    while True:
        if decompressor is not None and decompressor.eof:
            streams += 1
            pending = decompressor.unused_data
            given -= len(pending)
            decompressor = None
        if decompressor is None or decompressor.needs_input:
            if not pending:
                pending = source.read(read_size)
                if not pending:
                    break
        if decompressor is None:
            if streams:
                # Stream padding: zero bytes between and after streams.
                stripped = pending.lstrip(b'\0')
                given += len(pending) - len(stripped)
                pending = stripped
                if not pending:
                    continue
            decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        data = b''
        if decompressor.needs_input:
            data, pending = pending, b''
            given += len(data)
        try:
            # Bounded, so that a zero run does not inflate all at once; what
            # is left of ``data`` stays inside the decompressor.
            out = decompressor.decompress(data, chunk_size)
        except lzma.LZMAError as err:
            raise XzDataError('the xz data is corrupt at or before byte {0} '
                              '({1}); the file is damaged'.format(given, err))
        if out:
            yield out
    if decompressor is not None:
        raise XzDataError('the xz data ends early, after {0} bytes; the file '
                          'is truncated'.format(given))
    if not streams:
        raise XzDataError('there is no xz data (the file is empty)')


def _inflate_xz_command(source, chunk_size):
    """Inflated chunks of the xz stream read from ``source``, by the xz
    command (Python 2.7): fed from a thread, read through a pipe, so at
    most a pipe's worth waits between them."""
    process = subprocess.Popen(['xz', '-dc'], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    failed = []
    unread = []  # set when xz stopped reading before the input's end

    def feed():
        try:
            for chunk in iter(lambda: source.read(READ_SIZE), b''):
                try:
                    process.stdin.write(chunk)
                except (IOError, OSError) as err:
                    # xz gave up on the data (its status says why) while
                    # more was coming: not the source's failure.
                    if err.errno != errno.EPIPE:
                        raise
                    unread.append(True)
                    return
        except BaseException:  # pylint: disable=broad-except
            failed.append(sys.exc_info())
        finally:
            try:
                process.stdin.close()
            except (IOError, OSError):
                pass

    feeder = threading.Thread(target=feed, name='xz-feeder')
    feeder.daemon = True
    feeder.start()
    try:
        for chunk in iter(lambda: process.stdout.read(chunk_size), b''):
            yield chunk
        feeder.join()
        if failed:
            six.reraise(*failed[0])
        if process.wait() != 0 or unread:
            raise XzDataError('the xz data is not valid ({0}); the file is '
                              'damaged'.format(process.stderr.read().decode(
                                  'utf-8', 'replace').strip() or
                                  'xz stopped before its end'))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class _ThreadedChunks(object):
    """Runs a chunk iterator on a thread of its own, a few chunks ahead."""

    def __init__(self, chunks):
        self._chunks = chunks
        self._queue = queue.Queue(QUEUE_CHUNKS)
        self._closing = False
        self._thread = threading.Thread(target=self._run,
                                        name='gzip-inflate')
        self._thread.daemon = True
        self._thread.start()

    def _run(self):
        try:
            for chunk in self._chunks:
                if self._closing:
                    return
                self._queue.put(chunk)
            self._queue.put(_END)
        except BaseException:  # pylint: disable=broad-except
            self._queue.put(sys.exc_info())

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                # With a timeout: Python 2 lets no signal (Ctrl-C) through a
                # blocking get.
                item = self._queue.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                continue
        if item is _END:
            self._queue.put(_END)   # and so again for any later call
            raise StopIteration
        if isinstance(item, tuple):
            self._queue.put(item)
            six.reraise(*item)
        return item

    next = __next__

    def close(self):
        self._closing = True
        while self._thread.is_alive():
            # Room in the queue lets a blocked put finish and the thread
            # see that it is to stop.
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.05)


class InflatedReader(io.BufferedIOBase):
    """What :func:`open_gzip_reader` and :func:`open_xz_reader` return:
    ``read(n)`` gives ``n`` bytes unless the stream ends first,
    ``read1(n)`` what is at hand (at most ``n``), ``readinto`` as files
    have it."""

    def __init__(self, chunks):
        io.BufferedIOBase.__init__(self)
        self._chunks = chunks
        self._chunk = b''
        self._offset = 0
        self._eof = False
        self._position = 0

    def readable(self):
        return True

    def tell(self):
        """Bytes read so far (it cannot seek)."""
        return self._position

    def _next_chunk(self):
        if self._eof:
            return False
        try:
            self._chunk = next(self._chunks)
        except StopIteration:
            self._eof = True
            self._chunk = b''
            return False
        self._offset = 0
        return True

    def read1(self, size=-1):
        if self.closed:
            raise ValueError('read of a closed reader')
        if self._offset >= len(self._chunk) and not self._next_chunk():
            return b''
        chunk, offset = self._chunk, self._offset
        if size is None or size < 0 or size >= len(chunk) - offset:
            data = chunk[offset:] if offset else chunk
        else:
            data = chunk[offset:offset + size]
        self._offset += len(data)
        self._position += len(data)
        return data

    def read(self, size=-1):
        if size is None or size < 0:
            pieces = []
            while True:
                data = self.read1()
                if not data:
                    return b''.join(pieces)
                pieces.append(data)
        return read_exactly(self.read1, size)

    def readinto(self, buffer):
        view = memoryview(buffer)
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def close(self):
        """Stop inflating (and its thread); the source is not closed."""
        if not self.closed:
            closer = getattr(self._chunks, 'close', None)
            if closer is not None:
                closer()
        io.BufferedIOBase.close(self)


# Header blocks that carry a member's long name, link or pax attributes,
# which tarfile reads whole into memory and then reads the next header.
_EXTENSION_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
                    tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
# Extensions in a row before a member: a name, a link, pax attributes, a
# global header; more is a chain made to recurse.
_MAX_EXTENSIONS = 8


class _BoundedTarInfo(tarfile.TarInfo):
    """
    A member header whose extensions are held to TAR_HEADER: tarfile reads
    a long name or a pax header whole, a GNU sparse map block after block
    (in the header, or in the data of a pax 1.0 sparse member), and
    recurses into the header after each extension, so a gzip bomb of any
    of them would take memory by the gigabyte.  All tarfile reads for one
    member's headers count.
    """

    def _proc_member(self, tar):
        if self.type not in _EXTENSION_TYPES + (tarfile.GNUTYPE_SPARSE,):
            return tarfile.TarInfo._proc_member(self, tar)
        if self.type in _EXTENSION_TYPES and self.size > TAR_HEADER.size:
            raise tarfile.HeaderError(
                'a header extension of {0} bytes, more than the {1} bytes '
                'a {2} may have'.format(self.size, TAR_HEADER.size,
                                        TAR_HEADER.what))
        depth = getattr(tar, '_eustore_extensions', 0) + 1
        if depth > _MAX_EXTENSIONS:
            raise tarfile.HeaderError('more than {0} header extensions in '
                                      'a row'.format(_MAX_EXTENSIONS))
        source = tar.fileobj
        if not isinstance(source, _HeaderReader):
            tar.fileobj = _HeaderReader(source)
        tar._eustore_extensions = depth
        try:
            return tarfile.TarInfo._proc_member(self, tar)
        finally:
            tar._eustore_extensions = depth - 1
            tar.fileobj = source


class _HeaderReader(object):
    """A tar stream's file while tarfile reads one member's headers: what
    it reads is held to TAR_HEADER."""

    def __init__(self, fileobj):
        self._fileobj = fileobj
        self._read = 0

    def read(self, size=None):
        self._read += size or 0
        if self._read > TAR_HEADER.size:
            raise tarfile.HeaderError('more than the {0} bytes a {1} may '
                                      'have'.format(TAR_HEADER.size,
                                                    TAR_HEADER.what))
        return self._fileobj.read(size)

    def __getattr__(self, name):
        return getattr(self._fileobj, name)


class TarStream(object):
    """
    A tar.gz read as a stream of members (no seeking), inflated on a thread
    of its own (above) and held to :data:`~eustore_plugin.limits.TARBALL`
    inflated, as a context manager giving the TarFile.  On a clean exit the
    gzip stream is read to its very end, so that its last CRC-32 and length
    are checked too.
    """

    def __init__(self, fileobj):
        self._source = fileobj
        self._reader = open_gzip_reader(fileobj, limit=TARBALL)
        try:
            self.tar = tarfile.open(fileobj=self._reader, mode='r|',
                                    bufsize=TAR_BUFSIZE,
                                    tarinfo=_BoundedTarInfo)
        except BaseException:
            self._reader.close()
            raise

    def __enter__(self):
        return self.tar

    def __exit__(self, kind, value, traceback):
        try:
            if kind is None:
                for _ in iter(lambda: self._reader.read(1 << 20), b''):
                    pass
            elif not isinstance(value, Exception):
                # Interrupted: the inflating thread may be waiting on the
                # source (a stalled store), and closing it lets the thread
                # end now.  (After a data error the source is still read to
                # its end, for its checksums to name the damage.)
                self._source.close()
        finally:
            self.tar.close()
            self._reader.close()
        return False
