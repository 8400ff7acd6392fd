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

On Python 3 each block's compressor is primed with the last 32 KiB of the
previous block (``zdict``), so matches reach back across block boundaries
and the ratio stays within a fraction of a percent of single-threaded gzip.
Python 2's zlib has no ``zdict``: there blocks are compressed independently,
which is still valid deflate and costs well under 1% in size at the
default block size.

zlib releases the GIL while it compresses, so the workers really run in
parallel.  The CRC-32 of the input is computed in order on the caller's
thread (zlib.crc32 releases the GIL too on Python 3).  Python 2's zlib
module holds one module-wide lock around every (de)compression call, so
there compression cannot run on two threads at once: with ``threads`` > 1
one worker thread compresses while the caller's thread hashes, encrypts and
writes.

Disk images hold long runs of zeros.  A whole block of zeros whose
dictionary is zeros too always compresses to the same bytes, so the first
such block is compressed and its output reused for the others: identical
output to compressing each, at the cost of a memory compare.
"""

from __future__ import absolute_import, division, print_function

import collections
import struct
import sys
import threading
import zlib

import six
from six.moves import queue

# 512 KiB: per-block overhead is negligible at this size, and smaller
# blocks gain nothing in speed (measured 128 KiB - 2 MiB) while holding more
# blocks in flight and finding fewer whole zero blocks.
DEFAULT_BLOCK_SIZE = 512 * 1024
# A deflate back-reference reaches at most 32 KiB back.
DICTIONARY_SIZE = 32 * 1024
_HAS_ZDICT = sys.version_info[0] >= 3
# Python 2's zlib serialises all compressors on one module-wide lock.
_PARALLEL_ZLIB = sys.version_info[0] >= 3
# gzip header: magic, deflate, no flags, no mtime, XFL 0, OS 255 (unknown).
# A zero mtime keeps the bytes reproducible for the same input.
GZIP_HEADER = b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff'


def compress_block(data, level, dictionary, last):
    """Raw deflate of one block, ending byte-aligned (or final if ``last``)."""
    if dictionary and _HAS_ZDICT:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS,
                                      zlib.DEF_MEM_LEVEL,
                                      zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS,
                                      zlib.DEF_MEM_LEVEL,
                                      zlib.Z_DEFAULT_STRATEGY)
    head = compressor.compress(data)
    tail = compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return head + tail if head else tail


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
            job.result = compress_block(*job.args)
        except BaseException:  # pylint: disable=broad-except
            job.error = sys.exc_info()
        job.done.set()


class ParallelGzipWriter(object):
    """Write-only gzip compressor; compressed bytes go to ``output`` (a
    callable taking bytes), in order, on the thread that calls ``write`` or
    ``close``.

    ``threads`` = 1 compresses on the caller's thread.  At most
    ``2 * threads`` blocks are in flight, which bounds memory to a few
    blocks per thread.  Call ``close`` to finish the stream, or ``abort`` to
    drop it; either stops the worker threads.
    """

    def __init__(self, output, level=6, threads=1,
                 block_size=DEFAULT_BLOCK_SIZE):
        if threads < 1:
            raise ValueError('threads must be at least 1')
        if block_size < DICTIONARY_SIZE:
            raise ValueError('block_size must be at least {0}'
                             .format(DICTIONARY_SIZE))
        self._output = output
        self._level = level
        self._block_size = block_size
        self._pending = []
        self._pending_length = 0
        self._dictionary = b''
        self._crc = 0
        self._length = 0
        self._in_flight = collections.deque()
        self._max_in_flight = 2 * threads
        self._jobs = None
        self._workers = []
        self._zero_block = b'\0' * block_size
        self._zero_dictionary = self._zero_block[:DICTIONARY_SIZE]
        self._zero_block_output = None
        if threads > 1:
            self._jobs = queue.Queue()
            for _ in range(threads if _PARALLEL_ZLIB else 1):
                worker = threading.Thread(target=_worker, args=(self._jobs,),
                                          name='gzip-worker')
                worker.daemon = True
                worker.start()
                self._workers.append(worker)
        self._output(GZIP_HEADER)

    @property
    def length(self):
        """Bytes of input taken so far."""
        return self._length

    def write(self, data):
        if not data:
            return
        self._crc = zlib.crc32(data, self._crc)
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
        """Compress what is left, write the trailer, stop the workers."""
        try:
            self._submit(b''.join(self._pending), True)
            self._pending = []
            while self._in_flight:
                self._emit(self._in_flight.popleft())
            self._output(struct.pack('<II', self._crc & 0xffffffff,
                                     self._length & 0xffffffff))
        finally:
            self._stop_workers()

    def abort(self):
        """Drop everything not yet written and stop the workers."""
        self._in_flight.clear()
        self._pending = []
        self._stop_workers()

    def _submit(self, block, last):
        dictionary = self._dictionary
        self._dictionary = block[-DICTIONARY_SIZE:] if _HAS_ZDICT else b''
        # Without zdict (Python 2) every block starts from an empty window.
        zero_run = (not last and block == self._zero_block and
                    (dictionary == self._zero_dictionary
                     if _HAS_ZDICT else True))
        if zero_run and self._zero_block_output is not None:
            job = _Job(None)
            job.result = self._zero_block_output
            job.done.set()
        else:
            job = _Job((block, self._level, dictionary, last))
            if zero_run:
                job.remember = True
            if self._jobs is None:
                job.result = compress_block(*job.args)
                job.done.set()
            else:
                self._jobs.put(job)
        self._in_flight.append(job)
        # Write out whatever is finished, and wait for the oldest block when
        # too many are in flight: this is where back-pressure from
        # ``output`` reaches the reader.
        while self._in_flight and (self._in_flight[0].done.is_set() or
                                   len(self._in_flight) >=
                                   self._max_in_flight):
            self._emit(self._in_flight.popleft())

    def _emit(self, job):
        job.done.wait()
        if job.error is not None:
            six.reraise(*job.error)
        result = job.result
        if job.remember:
            self._zero_block_output = result
        job.result = job.args = None
        self._output(result)

    def _stop_workers(self):
        for _ in self._workers:
            self._jobs.put(None)
        self._workers = []
