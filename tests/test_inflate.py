# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Tests of eustore_plugin.images.inflate: what gzip(1) reads, read the
same, on both backends, with and without its thread; everything wrong with
the data is one GzipDataError.  xz the same (XzDataError); and whatever
the ratio, memory stays flat, work linear, and a limit holds as the data
inflates."""

from __future__ import absolute_import, division, print_function

import gzip
import io
import os
import tarfile
import threading
import time
import zlib

import pytest
import six

from eustore_plugin.images import inflate
from eustore_plugin.images.inflate import (GzipDataError, TarStream,
                                           XzDataError, open_gzip_reader,
                                           open_xz_reader)
from eustore_plugin.limits import SizeLimit
from tests.support.bundles import run
from tests.support.hostile import xz_of_zeros
from tests.support.images import BrokenStream, image_bytes
from tests.support.moto import which

try:
    import tracemalloc
except ImportError:  # Python 2.7
    tracemalloc = None

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


# ---------------------------------------------------------------- bounds

needs_xz = pytest.mark.skipif(not which('xz'), reason='xz makes the test '
                              'data: run scripts/setup')
needs_tracemalloc = pytest.mark.skipif(tracemalloc is None, reason=(
    'Python 2.7 has no tracemalloc (its xz is the xz command, a process of '
    'its own, joined by pipes)'))


def drain(fileobj):
    """Read to the end in 1 MiB reads: (bytes, CPU seconds)."""
    started = time.process_time() if hasattr(time, 'process_time') else 0
    total = 0
    for piece in iter(lambda: fileobj.read(MIB), b''):
        total += len(piece)
    used = time.process_time() - started if hasattr(time, 'process_time') \
        else 0
    return total, used


def traced_peak(function):
    """The most memory Python held while ``function()`` ran (None where it
    cannot tell), and what it returned."""
    if tracemalloc is None:
        return None, function()
    tracemalloc.start()
    try:
        result = function()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@needs_xz
@needs_tracemalloc
def test_an_xz_bomb_inflates_in_flat_memory_and_linear_time(tmpdir):
    # A few KiB inflating to 64 and 256 MiB: memory is xz's dictionary (8
    # MiB at -6) and a chunk or two whatever the size, and four times the
    # data costs about four times the work (a reader that kept copying what
    # it held cost sixteen).
    runs = {}
    for size in (64 * MIB, 256 * MIB):
        packed = xz_of_zeros(str(tmpdir.join('{0}.xz'.format(size))), size)
        peak, (total, used) = traced_peak(
            lambda: drain(open_xz_reader(io.BytesIO(packed))))
        assert total == size
        assert peak < 16 * MIB, peak
        runs[size] = used
    assert runs[256 * MIB] <= 8 * runs[64 * MIB], runs


@needs_xz
def test_xz_reads_what_xz_reads(tmpdir):
    # Two streams with padding between them, as xz(1) reads them.
    first, second = image_bytes(300 * KIB, seed=50), b'second\n' * 1000
    packed = run(['xz', '-c'], stdin=first) + b'\0' * 8 + \
        run(['xz', '-c', '-9'], stdin=second)
    path = str(tmpdir.join('two.xz'))
    with open(path, 'wb') as out:
        out.write(packed)
    assert run(['xz', '-d', '-c', path]) == first + second
    reader = open_xz_reader(io.BytesIO(packed), read_size=1000,
                            chunk_size=64 * KIB)
    assert reader.read() == first + second


# What is said (Python 3's lzma, or Python 2.7's xz command).
@needs_xz
@pytest.mark.parametrize('damage, complaints', [
    ('truncated', ('truncated', 'Unexpected end of input')),
    ('corrupt', ('damaged',)), ('not-xz', ('damaged',)),
    ('empty', ('no xz data', 'File format not recognized'))])
def test_what_is_wrong_with_xz_data_is_one_xz_data_error(damage,
                                                         complaints):
    packed = bytearray(run(['xz', '-c'], stdin=image_bytes(200 * KIB,
                                                           seed=51)))
    if damage == 'truncated':
        packed = packed[:len(packed) // 2]
    elif damage == 'corrupt':
        packed[len(packed) // 2] ^= 0x55
    elif damage == 'not-xz':
        packed = bytearray(b'PK\x03\x04 a zip file' * 100)
    else:
        packed = bytearray()
    reader = open_xz_reader(io.BytesIO(bytes(packed)))
    with pytest.raises(XzDataError) as caught:
        drain(reader)
    assert any(complaint in str(caught.value) for complaint in complaints)
    assert '\n' not in str(caught.value)


@needs_xz
def test_xz_giving_up_while_more_is_coming_is_one_xz_data_error(
        monkeypatch):
    # Python 2.7's path, the xz command, on every Python: xz refuses the
    # first bytes and exits while megabytes are still to be fed to it, so
    # the feeding thread meets a broken pipe (a race it once lost, said as
    # "Broken pipe"); what is said is the data's fault, in one line.
    monkeypatch.setattr(inflate, 'lzma', None)
    reader = open_xz_reader(io.BytesIO(b'not xz data at all' * 500000))
    with pytest.raises(XzDataError) as caught:
        drain(reader)
    assert 'the file is damaged' in str(caught.value)
    assert '\n' not in str(caught.value)


@pytest.mark.parametrize('kind', ['gzip', 'xz'])
def test_a_limit_holds_as_the_data_inflates(kind, tmpdir):
    if kind == 'xz':
        if not which('xz'):
            pytest.skip('xz makes the test data: run scripts/setup')
        packed = xz_of_zeros(str(tmpdir.join('bomb.xz')), 64 * MIB)
        reader = open_xz_reader(io.BytesIO(packed), SizeLimit(MIB, 'disk'))
        error = XzDataError
    else:
        deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
        packed = deflater.compress(b'\0' * (64 * MIB)) + deflater.flush()
        reader = open_gzip_reader(io.BytesIO(packed), threaded=False,
                                  limit=SizeLimit(MIB, 'tarball'))
        error = GzipDataError
    handed = []
    with pytest.raises(error) as caught:
        while True:
            piece = reader.read1(inflate.CHUNK_SIZE)
            if not piece:
                break
            handed.append(len(piece))
    assert 'inflates to more than the 1048576 bytes a {0} may have'.format(
        'disk' if kind == 'xz' else 'tarball') in str(caught.value)
    # Stopped at the limit, not at the end: at most a chunk past it.
    assert sum(handed) <= MIB + inflate.CHUNK_SIZE
    reader.close()


def _with_checksum(block):
    """A tar header block with its checksum field filled in."""
    block = bytearray(block)
    block[148:156] = b' ' * 8
    block[148:156] = '{0:06o}\0 '.format(sum(block)).encode('ascii')
    return bytes(block)


def _gzip_blocks(path, head, block, count, tail=b''):
    """``head``, then ``block`` ``count`` times, then ``tail``, gzipped
    into ``path`` piecewise."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, 'wb') as out:
        out.write(deflater.compress(head))
        run_of = block * 2048
        for _ in range(count // 2048):
            out.write(deflater.compress(run_of))
        out.write(deflater.compress(tail + b'\0' * 1024))
        out.write(deflater.flush())


def _pax_header(size):
    info = tarfile.TarInfo('././@PaxHeader')
    info.type = tarfile.XHDTYPE
    info.size = size
    return info.tobuf(tarfile.USTAR_FORMAT)


def _long_name_chain(count):
    """``count`` GNU long-name headers in a row, then a file."""
    headers = b''
    for _ in range(count):
        info = tarfile.TarInfo('././@LongLink')
        info.type = tarfile.GNUTYPE_LONGNAME
        info.size = 100
        headers += info.tobuf(tarfile.USTAR_FORMAT) + b'x' * 99 + \
            b'\0' * 413
    info = tarfile.TarInfo('disk.img')
    info.size = 0
    return headers + info.tobuf(tarfile.GNU_FORMAT)


def _sparse_member_head():
    """A GNU sparse member header saying an extension block follows."""
    info = tarfile.TarInfo('sparse.img')
    info.size = 0
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    block[156:157] = tarfile.GNUTYPE_SPARSE
    block[482] = 1                                  # isextended
    block[483:495] = b'00000001000\0'               # realsize
    return _with_checksum(bytes(block))


@pytest.mark.parametrize('header', ['pax', 'long-names', 'sparse-map'])
def test_tar_headers_are_held_to_a_mib(header, tmpdir):
    # tarfile reads a pax header whole, follows extension after extension,
    # and a sparse map block after block: 256 MiB of them would all be in
    # memory, in a few hundred KiB of gzip.
    path = str(tmpdir.join('headers.tgz'))
    if header == 'pax':
        _gzip_blocks(path, _pax_header(256 * MIB), b'\0' * 512,
                     256 * MIB // 512)
        complaint = 'a header extension of 268435456 bytes'
    elif header == 'long-names':
        _gzip_blocks(path, _long_name_chain(50), b'', 0)
        # Python 2.7's tarfile says only that a header after one failed.
        complaint = 'more than 8 header extensions in a row' if six.PY3 \
            else 'missing or bad subsequent header'
    else:
        extension = bytearray(512)
        extension[504] = 1                          # isextended, again
        _gzip_blocks(path, _sparse_member_head(), bytes(extension),
                     256 * MIB // 512)
        complaint = "more than the 1048576 bytes a member's headers may have"

    def read_members():
        with open(path, 'rb') as source:
            with pytest.raises(tarfile.TarError) as refused:
                with TarStream(source) as tar:
                    for _ in tar:
                        pass
        return refused.value

    peak, refused = traced_peak(read_members)
    assert complaint in str(refused)
    assert peak is None or peak < 16 * MIB, peak
