# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The tar stream inside a bundle: one regular-file member, named after the
bundle prefix, whose data is the image.

We frame the stream ourselves instead of using ``tarfile`` because we want
it in fixed-size chunks straight from the source (no seeking, no staging
copy) and because the image's declared size must be checked against what the
stream really holds.

Header format: GNU tar's own ("ustar  " magic), which is also what Python 2's
``tarfile`` (and therefore euca2ools) writes.  Its size field holds 11 octal
digits, i.e. at most 8 GiB - 1; larger sizes (bundles go up to 10 GiB) use
GNU's base-256 encoding, which GNU tar, bsdtar and Python's ``tarfile`` all
read.  Names over 100 bytes get a GNU ``././@LongLink`` entry.  The archive
ends with two zero blocks and is padded to a whole 10240-byte record, as GNU
tar and ``tarfile`` do.
"""

from __future__ import absolute_import, division, print_function

import struct
import time

from eustore_plugin.bundle.errors import ImageSourceError

BLOCK = 512
RECORD = 20 * BLOCK
# The largest number the 12-byte size field holds as 11 octal digits.
MAX_OCTAL_SIZE = 8 ** 11 - 1


def _octal(value, width):
    """A NUL-terminated, zero-padded octal field of ``width`` bytes."""
    return ('%0*o' % (width - 1, value)).encode('ascii') + b'\0'


def _size_field(size):
    if size <= MAX_OCTAL_SIZE:
        return _octal(size, 12)
    # GNU base-256: a 0x80 marker byte, then 11 bytes big-endian.
    return b'\x80' + struct.pack('>Q', size).rjust(11, b'\0')


def _header_block(name, size, mtime, typeflag):
    fields = [
        name.ljust(100, b'\0'),       # name
        _octal(0o644, 8),             # mode
        _octal(0, 8),                 # uid
        _octal(0, 8),                 # gid
        _size_field(size),            # size
        _octal(int(mtime), 12),       # mtime
        b' ' * 8,                     # chksum, counted as spaces
        typeflag,                     # typeflag
        b'\0' * 100,                  # linkname
        b'ustar  \0',                 # GNU magic + version
        b'root'.ljust(32, b'\0'),     # uname
        b'root'.ljust(32, b'\0'),     # gname
        b'\0' * 8,                    # devmajor
        b'\0' * 8,                    # devminor
    ]
    block = b''.join(fields).ljust(BLOCK, b'\0')
    checksum = sum(bytearray(block))
    # chksum: six octal digits, NUL, space (what GNU tar writes).
    return block[:148] + ('%06o' % checksum).encode('ascii') + b'\0 ' + \
        block[156:]


def _padding(length):
    return b'\0' * (-length % BLOCK)


def member_header(name, size, mtime=None):
    """The header bytes that precede a regular-file member's data.

    ``name`` is text or UTF-8 bytes.
    """
    if not isinstance(name, bytes):
        name = name.encode('utf-8')
    if mtime is None:
        mtime = time.time()
    header = b''
    if len(name) > 100:
        long_name = name + b'\0'
        header = (_header_block(b'././@LongLink', len(long_name), 0, b'L') +
                  long_name + _padding(len(long_name)))
        name = name[:100]
    return header + _header_block(name, size, mtime, b'0')


def archive_trailer(stream_length):
    """What follows the last member's data, given the stream length so far:
    padding to a block, two zero blocks, padding to a whole record."""
    length = stream_length + (-stream_length % BLOCK) + 2 * BLOCK
    return b'\0' * (length - stream_length + (-length % RECORD))


def read_exactly(read, count):
    """Read ``count`` bytes with ``read`` (a file's read), or fewer only at
    end of stream.

    Streams (sockets, pipes, decompressors) may return short reads before
    their end, so a short read alone does not mean the end.
    """
    data = read(count)
    if len(data) == count or not data:
        return data
    pieces = [data]
    missing = count - len(data)
    while missing:
        more = read(missing)
        if not more:
            break
        pieces.append(more)
        missing -= len(more)
    return b''.join(pieces)


def iter_tar_stream(fileobj, size, name, chunk_size, mtime=None):
    """Yield the tar stream of one member holding the ``size`` bytes read
    from ``fileobj``, in chunks of ``chunk_size`` bytes (the last one may be
    shorter).

    The source is read exactly once, front to back.  Raises ImageSourceError
    when it ends before ``size`` bytes or still has bytes after them.
    """
    header = member_header(name, size, mtime)
    if len(header) >= chunk_size:
        raise ValueError('chunk_size must be larger than a tar header')
    pending = header
    remaining = size
    offset = 0
    while remaining:
        # The first chunk carries the header, so later reads stay aligned
        # to chunk_size and chunks are passed on without being joined.
        want = min(remaining, chunk_size - len(pending))
        try:
            data = read_exactly(fileobj.read, want)
        except (IOError, OSError) as err:
            raise ImageSourceError(
                'reading the image failed after {0} of {1} bytes: {2}'
                .format(offset, size, err))
        offset += len(data)
        remaining -= len(data)
        if len(data) < want:
            raise ImageSourceError(
                'the image ended after {0} bytes but {1} were declared; the '
                'image file or download is truncated'.format(offset, size))
        if pending:
            data = pending + data
            pending = b''
        if remaining:
            yield data
        else:
            # Keep the last chunk so the trailer can ride along with it.
            pending = data
    try:
        extra = fileobj.read(1)
    except (IOError, OSError) as err:
        raise ImageSourceError(
            'reading the image failed after {0} bytes: {1}'.format(size, err))
    if extra:
        raise ImageSourceError(
            'the image holds more than the {0} bytes declared; declare its '
            'real size'.format(size))
    stream_length = len(header) + size
    tail = pending + archive_trailer(stream_length)
    for start in range(0, len(tail), chunk_size):
        yield tail[start:start + chunk_size]
