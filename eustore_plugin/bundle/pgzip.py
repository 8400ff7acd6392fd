# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A gzip writer that compresses with several threads and still writes one
ordinary gzip member, the way pigz does.

The input is cut into blocks.  Each block is compressed on its own, as raw
deflate, by a worker thread; all blocks but the last end with a sync flush
(which byte-aligns the output and sets no "final" bit), the last with a
finish.  Concatenated in order, the outputs form one valid deflate stream,
so header + blocks + CRC-32/ISIZE trailer is a single-member gzip file that
``gzip -d``, zlib and Java's GZIPInputStream read like any other.

Deflate comes from ISA-L (the ``isal`` package) where it imports, from
zlib otherwise (Python 2.7, and machines with no isal wheel).  Both write
standard deflate, so the choice changes the bytes but not who can read
them.  Levels are chosen by name (:data:`COMPRESSION_LEVELS`), each meaning
the same trade on both backends (:data:`LEVELS`): ``fast`` is each one's
fastest real compression, ``balanced`` its own default, ``small`` its best.

The default level, :data:`DEFAULT_COMPRESSION`, is each backend's by
measurement (benchmarks/bundle.py: a 512 MiB disk-like image in a 171.6
MiB pigz -6 tarball, read and bundled on 2 cores; the igzip -1 pipeline
took 3.60 s and wrote 179.6 MiB):

- isal: ``balanced``, which bundled as fast as ``fast`` (best of 3: 3.03 s
  against 3.22 s, CPU 4.6 s against 4.7 s) and 2.1% smaller (174.7 MiB
  against 178.5 MiB); ``small`` took 3.68 s to save 0.2% more.
- zlib (Python 2.7): ``fast``, 17.6 s against 32.0 s for ``balanced``, at
  a cost of 6.2% in size (182.6 MiB against 171.9 MiB).

Each block's compressor is primed with the last 32 KiB of the previous
block (``zdict``; isal has it, and zlib on Python 3), so matches reach back
across block boundaries and the ratio stays within a fraction of a percent
of single-threaded gzip.  Python 2's zlib has no ``zdict``: there blocks
are compressed independently, which is still valid deflate and costs well
under 1% in size at the default block size.

isal and Python 3's zlib release the GIL while they compress, so the
workers really run in parallel.  The CRC-32 of the input is computed in
order on the caller's thread (isal's when it imports: several times faster
than zlib's, and the same number).  Python 2's zlib module holds one
module-wide lock around every (de)compression call, so there compression
cannot run on two threads at once: with ``threads`` > 1 one worker thread
compresses while the caller's thread hashes, encrypts and writes.

Disk images hold long runs of zeros.  A whole block of zeros whose
dictionary is zeros too always compresses to the same bytes, so the first
such block is compressed and its output reused for the others: identical
output to compressing each, at the cost of a memory compare.
"""

from __future__ import absolute_import, division, print_function

import struct
import sys
import threading
import zlib

import six
from six.moves import queue

try:
    from isal import isal_zlib
except ImportError:  # Python 2.7, or a machine with no isal wheel
    isal_zlib = None

# 512 KiB: per-block overhead is negligible at this size, and smaller
# blocks gain nothing in speed (measured 128 KiB - 2 MiB) while holding more
# blocks in flight and finding fewer whole zero blocks.
DEFAULT_BLOCK_SIZE = 512 * 1024
# A deflate back-reference reaches at most 32 KiB back.
DICTIONARY_SIZE = 32 * 1024
# gzip header: magic, deflate, no flags, no mtime, XFL 0, OS 255 (unknown).
# A zero mtime keeps the bytes reproducible for the same input.
GZIP_HEADER = b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff'

BACKENDS = ('isal', 'zlib') if isal_zlib is not None else ('zlib',)
DEFAULT_BACKEND = BACKENDS[0]
_MODULES = {'isal': isal_zlib, 'zlib': zlib}
_MAX_LEVEL = {'isal': 3, 'zlib': 9}

# The names the user chooses from, fastest first, and what each is on each
# backend: "fast" is each library's fastest real compression (isal's level
# 0 was no faster on disk images and left 0.65 of the bytes, against 0.51
# at level 1), "balanced" each one's own default, "small" each one's best.
COMPRESSION_LEVELS = ('fast', 'balanced', 'small')
LEVELS = {
    'fast': {'isal': 1, 'zlib': 1},
    'balanced': {'isal': 2, 'zlib': 6},
    'small': {'isal': 3, 'zlib': 9},
}
# Measured: see the module docstring.
DEFAULT_COMPRESSION_BY_BACKEND = {'isal': 'balanced', 'zlib': 'fast'}
#: This Python's default level (its best backend's).
DEFAULT_COMPRESSION = DEFAULT_COMPRESSION_BY_BACKEND[DEFAULT_BACKEND]

_crc32 = isal_zlib.crc32 if isal_zlib is not None else zlib.crc32


class Deflater(object):
    """Raw deflate of blocks, by one backend at one of its own levels.

    ``zdict``: whether blocks can be primed with the previous block's tail;
    ``parallel``: whether several compressors really run at once.
    """

    def __init__(self, backend, level):
        if backend not in _MODULES:
            raise ValueError('no such deflate backend: {0!r}'.format(backend))
        if _MODULES[backend] is None:
            raise ValueError('the {0} backend is not available here (the '
                             'isal package does not import)'.format(backend))
        if level not in range(0, _MAX_LEVEL[backend] + 1):
            raise ValueError('{0} levels are 0-{1}, not {2!r}'.format(
                backend, _MAX_LEVEL[backend], level))
        self.backend = backend
        self.level = level
        self._module = _MODULES[backend]
        self.zdict = backend == 'isal' or six.PY3
        self.parallel = backend == 'isal' or six.PY3

    def __repr__(self):
        return 'Deflater({0!r}, {1!r})'.format(self.backend, self.level)

    def __eq__(self, other):
        return isinstance(other, Deflater) and \
            (self.backend, self.level) == (other.backend, other.level)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.backend, self.level))

    def compress_block(self, data, dictionary, last):
        """Raw deflate of one block, ending byte-aligned (or final if
        ``last``)."""
        module = self._module
        if dictionary and self.zdict:
            compressor = module.compressobj(
                self.level, module.DEFLATED, -module.MAX_WBITS,
                module.DEF_MEM_LEVEL, module.Z_DEFAULT_STRATEGY, dictionary)
        else:
            compressor = module.compressobj(
                self.level, module.DEFLATED, -module.MAX_WBITS,
                module.DEF_MEM_LEVEL, module.Z_DEFAULT_STRATEGY)
        head = compressor.compress(data)
        tail = compressor.flush(module.Z_FINISH if last
                                else module.Z_SYNC_FLUSH)
        return head + tail if head else tail


def deflater_for(compression=None, backend=None):
    """The Deflater of a named level (one of COMPRESSION_LEVELS; by
    default the backend's default) on ``backend``, by default the best one
    this Python has."""
    backend = backend or DEFAULT_BACKEND
    if compression is None and backend in DEFAULT_COMPRESSION_BY_BACKEND:
        compression = DEFAULT_COMPRESSION_BY_BACKEND[backend]
    if compression not in LEVELS:
        raise ValueError('compression level {0!r} is not one of {1}'.format(
            compression, ', '.join(COMPRESSION_LEVELS)))
    if backend not in _MODULES:
        raise ValueError('no such deflate backend: {0!r}'.format(backend))
    return Deflater(backend, LEVELS[compression][backend])


class _Job(object):
    """One block on its way through the pool; ``done`` is set when
    ``result`` (compressed bytes) or ``error`` (exc_info) is ready."""

    __slots__ = ('args', 'done', 'result', 'error', 'remember')

    def __init__(self, args):
        self.args = args
        self.done = threading.Event()
        self.result = None
        self.error = None
        # Keep the result: it is the output of a zero block.
        self.remember = False


def _worker(jobs):
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            job.result = job.args[0].compress_block(*job.args[1:])
        except BaseException:  # pylint: disable=broad-except
            job.error = sys.exc_info()
        job.done.set()


class ParallelGzipWriter(object):
    """Write-only gzip compressor; compressed bytes go to ``output`` (a
    callable taking bytes), in order.

    ``deflater`` (a :class:`Deflater`) says which backend and level; the
    default is the best backend there is at its default level.

    ``threads`` = 1 compresses and calls ``output`` on the caller's thread.
    With more, worker threads compress and one more thread calls
    ``output``, so that what ``output`` does (encrypting, hashing, writing
    parts) overlaps with what the caller does between writes (reading,
    hashing the input) instead of adding to it; an exception from
    ``output`` or a worker is raised by the next ``write`` or ``close``.
    At most ``2 * threads`` blocks are in flight, which bounds memory to a
    few blocks per thread and carries back-pressure from ``output`` to the
    caller.  Call ``close`` to finish the stream, or ``abort`` to drop it;
    either stops the threads.
    """

    def __init__(self, output, deflater=None, threads=1,
                 block_size=DEFAULT_BLOCK_SIZE):
        if threads < 1:
            raise ValueError('threads must be at least 1')
        if block_size < DICTIONARY_SIZE:
            raise ValueError('block_size must be at least {0}'
                             .format(DICTIONARY_SIZE))
        self._output = output
        self._deflater = deflater or deflater_for()
        self._block_size = block_size
        self._pending = []
        self._pending_length = 0
        self._dictionary = b''
        self._crc = 0
        self._length = 0
        self._jobs = None
        self._workers = []
        self._ordered = None
        self._emitter = None
        self._error = None
        self._aborted = False
        self._zero_block = b'\0' * block_size
        self._zero_dictionary = self._zero_block[:DICTIONARY_SIZE]
        self._zero_block_output = None
        if threads > 1:
            self._jobs = queue.Queue()
            for _ in range(threads if self._deflater.parallel else 1):
                self._start_thread(_worker, (self._jobs,), 'gzip-worker')
            self._ordered = queue.Queue()
            self._room = threading.Semaphore(2 * threads)
            self._emitter = self._start_thread(self._emit_in_order, (),
                                               'gzip-output')
        self._output(GZIP_HEADER)

    def _start_thread(self, target, args, name):
        thread = threading.Thread(target=target, args=args, name=name)
        thread.daemon = True
        thread.start()
        self._workers.append(thread)
        return thread

    @property
    def length(self):
        """Bytes of input taken so far."""
        return self._length

    def write(self, data):
        if not data:
            return
        self._crc = _crc32(data, self._crc)
        self._length += len(data)
        if not self._pending and len(data) == self._block_size:
            # The common case: whole blocks in, passed on without a copy.
            self._submit(data, False)
            return
        self._pending.append(data)
        self._pending_length += len(data)
        if self._pending_length >= self._block_size:
            joined = b''.join(self._pending)
            cut = len(joined) - len(joined) % self._block_size
            for start in range(0, cut, self._block_size):
                self._submit(joined[start:start + self._block_size], False)
            rest = joined[cut:]
            self._pending = [rest] if rest else []
            self._pending_length = len(rest)

    def close(self):
        """Compress what is left, write the trailer, stop the threads."""
        try:
            self._submit(b''.join(self._pending), True)
            self._pending = []
            if self._emitter is not None:
                self._ordered.put(None)
                self._emitter.join()
                self._emitter = None
                self._raise_error()
            self._output(struct.pack('<II', self._crc & 0xffffffff,
                                     self._length & 0xffffffff))
        finally:
            self.abort()

    def abort(self):
        """Drop everything not yet written and stop the threads; returns
        once ``output`` is no longer being called."""
        self._aborted = True
        self._pending = []
        if self._emitter is not None:
            self._ordered.put(None)
            self._emitter.join()
            self._emitter = None
        for _ in range(len(self._workers)):
            self._jobs.put(None)
        self._workers = []

    def _submit(self, block, last):
        self._raise_error()
        dictionary = self._dictionary
        zdict = self._deflater.zdict
        self._dictionary = block[-DICTIONARY_SIZE:] if zdict else b''
        # Without zdict (Python 2) every block starts from an empty window.
        zero_run = (not last and block == self._zero_block and
                    (dictionary == self._zero_dictionary if zdict else True))
        if self._emitter is None:
            if zero_run and self._zero_block_output is not None:
                result = self._zero_block_output
            else:
                result = self._deflater.compress_block(block, dictionary,
                                                       last)
                if zero_run:
                    self._zero_block_output = result
            self._output(result)
            return
        # Waiting here for the output thread is where back-pressure from
        # ``output`` reaches the caller.
        self._room.acquire()
        if self._error is not None:
            self._room.release()
            self._raise_error()
        if zero_run and self._zero_block_output is not None:
            job = _Job(None)
            job.result = self._zero_block_output
            job.done.set()
        else:
            job = _Job((self._deflater, block, dictionary, last))
            job.remember = zero_run
            self._jobs.put(job)
        self._ordered.put(job)

    def _emit_in_order(self):
        """Body of the output thread: each job's result, in order."""
        while True:
            job = self._ordered.get()
            if job is None:
                return
            try:
                if self._aborted or self._error is not None:
                    continue  # dropped, but its room is still given back
                job.done.wait()
                if job.error is not None:
                    self._error = job.error
                    continue
                if job.remember:
                    self._zero_block_output = job.result
                self._output(job.result)
            except BaseException:  # pylint: disable=broad-except
                self._error = sys.exc_info()
            finally:
                job.result = job.args = None
                self._room.release()

    def _raise_error(self):
        if self._error is not None:
            six.reraise(*self._error)
