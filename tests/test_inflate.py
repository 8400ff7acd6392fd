# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Tests of eustore_plugin.images.inflate: what gzip(1) reads, read the
same, on both backends, with and without its thread; everything wrong with
the data is one GzipDataError."""

from __future__ import absolute_import, division, print_function

import gzip
import io
import os
import tarfile
import threading
import time
import zlib

import pytest

from eustore_plugin.images import inflate
from eustore_plugin.images.inflate import GzipDataError, open_gzip_reader
from tests.support.bundles import run
from tests.support.images import BrokenStream, image_bytes

KIB = 1024
MIB = 1024 * KIB

VARIANTS = [(backend, threaded) for backend in inflate.BACKENDS
            for threaded in (False, True)]
VARIANT_IDS = ['{0}-{1}'.format(backend, 'thread' if threaded else 'inline')
               for backend, threaded in VARIANTS]


@pytest.fixture(params=VARIANTS, ids=VARIANT_IDS)
def reader(request):
    """open_gzip_reader on one backend, threaded or not; closes them all."""
    backend, threaded = request.param
    opened = []

    def open_reader(data, **kwargs):
        source = data if hasattr(data, 'read') else io.BytesIO(data)
        gz_reader = open_gzip_reader(source, threaded=threaded,
                                     backend=backend, **kwargs)
        opened.append(gz_reader)
        return gz_reader
    yield open_reader
    for gz_reader in opened:
        gz_reader.close()


def gzip_tool(data, *options):
    return run(['gzip', '-c'] + list(options), stdin=data)


def read_error(gz_reader):
    with pytest.raises(GzipDataError) as caught:
        while gz_reader.read(100 * KIB):
            pass
    message = str(caught.value)
    assert '\n' not in message
    assert isinstance(caught.value, ValueError)
    return message


def test_matches_gzip_byte_for_byte_on_generated_data(reader, tmpdir):
    data = image_bytes(3 * MIB + 77, seed=31) + b'\0' * (5 * MIB)
    members = gzip_tool(data[:MIB], '-1') + gzip_tool(data[MIB:], '-9') + \
        gzip_tool(b'') + gzip_tool(b'tail', '-n')
    path = str(tmpdir.join('members.gz'))
    with open(path, 'wb') as out:
        out.write(members)
    expected = run(['gzip', '-d', '-c', path])
    assert expected == data + b'tail'
    assert reader(members).read() == expected


def test_reads_in_any_sizes(reader):
    data = image_bytes(700 * KIB, seed=32)
    gz_reader = reader(gzip.compress(data) if hasattr(gzip, 'compress')
                       else gzip_tool(data), read_size=1000,
                       chunk_size=64 * KIB)
    pieces = []
    sizes = [1, 511, 4096, 0, 65536, 100000, 7]
    while True:
        size = sizes[len(pieces) % len(sizes)]
        piece = gz_reader.read(size)
        if size and not piece:
            break
        assert len(piece) == size or len(piece) < size and \
            len(b''.join(pieces)) + len(piece) == len(data)
        pieces.append(piece)
    assert b''.join(pieces) == data
    assert gz_reader.tell() == len(data)
    assert gz_reader.read(10) == b''
    buffer = bytearray(10)
    assert gz_reader.readinto(buffer) == 0


def test_readinto_and_read1(reader):
    data = image_bytes(300 * KIB, seed=33)
    gz_reader = reader(gzip_tool(data), chunk_size=64 * KIB)
    buffer = bytearray(1000)
    assert gz_reader.readinto(buffer) == 1000
    assert bytes(buffer) == data[:1000]
    rest = [gz_reader.read1(10 ** 9)]
    assert 0 < len(rest[0]) <= 64 * KIB
    while rest[-1]:
        rest.append(gz_reader.read1())
    assert data[1000:] == b''.join(rest)


def test_trailing_zeros_are_padding(reader):
    data = image_bytes(50 * KIB, seed=34)
    assert reader(gzip_tool(data) + b'\0' * 20000).read() == data


@pytest.mark.parametrize('trailer', [b'garbage', b'\0' * 10 + b'x',
                                     b'\0\0' + b'\x1f\x8b'])
def test_anything_else_after_the_end_is_refused(reader, trailer):
    data = image_bytes(50 * KIB, seed=35)
    message = read_error(reader(gzip_tool(data) + trailer))
    assert 'after its end' in message


def test_gzip_of_nothing_is_empty(reader):
    assert reader(gzip_tool(b'')).read() == b''


def test_no_data_at_all_is_refused(reader):
    assert 'empty' in read_error(reader(b''))


def test_not_gzip_is_refused(reader):
    message = read_error(reader(b'PK\x03\x04 a zip file, say' * 100))
    assert 'corrupt' in message


@pytest.mark.parametrize('where', ['header', 'data', 'crc', 'length'])
def test_corrupt_data_is_refused(reader, where):
    data = image_bytes(400 * KIB, seed=36)
    damaged = bytearray(gzip_tool(data, '-n'))
    position = {'header': 3, 'data': len(damaged) // 2,
                'crc': len(damaged) - 6, 'length': len(damaged) - 2}[where]
    damaged[position] ^= 0x55
    message = read_error(reader(bytes(damaged)))
    assert 'corrupt' in message and 'damaged' in message


@pytest.mark.parametrize('keep', [1, 9, 10, 5000, -8, -1])
def test_truncated_data_is_refused(reader, keep):
    compressed = gzip_tool(image_bytes(200 * KIB, seed=37))
    cut = compressed[:keep] if keep > 0 else compressed[:len(compressed) +
                                                        keep]
    message = read_error(reader(cut))
    assert 'truncated' in message
    assert str(len(cut)) in message


def test_truncated_second_member_is_refused(reader):
    first = gzip_tool(b'first member\n')
    second = gzip_tool(image_bytes(100 * KIB, seed=38))
    gz_reader = reader(first + second[:len(second) // 2])
    assert gz_reader.read(13) == b'first member\n'
    assert 'truncated' in read_error(gz_reader)


def test_errors_of_the_source_are_raised_as_they_are(reader):
    compressed = gzip_tool(image_bytes(500 * KIB, seed=39))
    gz_reader = reader(BrokenStream(compressed, 1000), read_size=100)
    with pytest.raises(IOError) as caught:
        gz_reader.read()
    assert not isinstance(caught.value, GzipDataError)
    assert 'connection reset' in str(caught.value)


def test_a_zero_run_inflates_in_bounded_chunks(reader):
    # 64 MiB of zeros are about 64 KiB of gzip: each chunk handed over
    # stays at the chunk size, whatever the ratio.
    compressed = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressed.compress(b'\0' * (64 * MIB)) + compressed.flush()
    gz_reader = reader(data, chunk_size=MIB)
    total = 0
    while True:
        piece = gz_reader.read1()
        if not piece:
            break
        assert len(piece) <= MIB
        total += len(piece)
    assert total == 64 * MIB


def test_reads_a_tarball_with_tarfile(reader):
    data = image_bytes(900 * KIB, seed=40)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        info = tarfile.TarInfo('starter/image.img')
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with tarfile.open(fileobj=reader(buffer.getvalue()), mode='r|',
                      bufsize=inflate.TAR_BUFSIZE) as archive:
        member = archive.next()
        assert member.name == 'starter/image.img'
        assert archive.extractfile(member).read() == data


def test_close_stops_the_thread_mid_stream():
    threads_before = set(threading.enumerate())
    compressed = gzip_tool(os.urandom(8 * MIB))
    gz_reader = open_gzip_reader(io.BytesIO(compressed), threaded=True,
                                 chunk_size=64 * KIB)
    assert len(gz_reader.read(1000)) == 1000
    # Let it fill its queue and block there.
    time.sleep(0.2)
    gz_reader.close()
    assert gz_reader.closed
    assert set(threading.enumerate()) - threads_before == set()
    with pytest.raises(ValueError):
        gz_reader.read(10)
    gz_reader.close()   # twice is fine


def test_close_does_not_close_the_source():
    source = io.BytesIO(gzip_tool(b'data'))
    gz_reader = open_gzip_reader(source)
    assert gz_reader.read() == b'data'
    gz_reader.close()
    assert not source.closed


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError):
        open_gzip_reader(io.BytesIO(b''), backend='bzip2')


def _gzip_member_with_every_header_field(data):
    """A member whose header has FEXTRA, FNAME, FCOMMENT and FHCRC set
    (gzip(1) writes FNAME at most), as RFC 1952 lays them out."""
    import struct
    header = b'\x1f\x8b\x08' + bytes(bytearray([2 | 4 | 8 | 16])) + \
        b'\0\0\0\0\0\xff'
    extra = b'AB\x02\x00hi'
    header += struct.pack('<H', len(extra)) + extra
    header += b'image.img\0' + b'a comment\0'
    header += struct.pack('<H', zlib.crc32(header) & 0xffff)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflater.compress(data) + deflater.flush()
    return header + body + struct.pack('<II', zlib.crc32(data) & 0xffffffff,
                                       len(data))


def test_reads_every_optional_header_field(reader, tmpdir):
    data = image_bytes(100 * KIB, seed=41)
    member = _gzip_member_with_every_header_field(data)
    path = str(tmpdir.join('fields.gz'))
    with open(path, 'wb') as out:
        out.write(member + member)
    assert run(['gzip', '-d', '-c', path]) == data + data
    assert reader(member + member).read() == data + data
