# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Tests of eustore_plugin.bundle: bundles are decoded with openssl, gzip,
tar and sha1sum alone, and round-tripped through BundleReader."""

from __future__ import absolute_import, division, print_function

import binascii
import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import threading
import time
import zlib

import pytest

from eustore_plugin.bundle import (BundleError, BundleVerificationError,
                                   BundleWriter, CredentialError,
                                   ImageSourceError, ManifestError, pgzip,
                                   tarstream)
from eustore_plugin.bundle.manifest import parse_manifest
from tests.support.bundlereader import BundleReader
from tests.support.bundles import (decode_with_tools, manifest_tree,
                                   part_files, run, sha1sum, signed_bytes)
from tests.support.images import BrokenStream, image_bytes
from tests.support.keys import KeyPair

KIB = 1024
PART = 64 * KIB
PREFIX = 'test-image.img'
ACCOUNT = '1234-5678-9012'
# gzip's own level on the backend every Python has, for the tests that
# compare with zlib.
ZLIB_6 = pgzip.Deflater('zlib', 6)


@pytest.fixture(scope='module')
def keys(tmpdir_factory):
    directory = str(tmpdir_factory.mktemp('keys'))

    class Keys(object):
        user = KeyPair(directory, 'user')
        cloud = KeyPair(directory, 'cloud')
        other = KeyPair(directory, 'other')
    return Keys


@pytest.fixture
def workdir(tmpdir):
    path = str(tmpdir.mkdir('work'))
    return path


def make_writer(keys, workdir=None, **kwargs):
    kwargs.setdefault('part_size', PART)
    kwargs.setdefault('block_size', 64 * KIB)
    return BundleWriter(kwargs.pop('prefix', PREFIX),
                        kwargs.pop('image_type', 'machine'), 'x86_64',
                        ACCOUNT, keys.user.cert_pem, keys.user.key_pem,
                        keys.cloud.cert_pem, workdir=workdir, **kwargs)


def bundle_to_dir(writer, data, out_dir, size=None):
    """Run a bundle, copying each part out as it is handed over; returns
    (manifest, parts)."""
    parts = []
    for part in writer.bundle(io.BytesIO(data),
                              len(data) if size is None else size):
        assert os.path.getsize(part.path) == part.size
        shutil.copy(part.path, os.path.join(out_dir, part.filename))
        parts.append(part)
    for part in parts:
        # Each part file is deleted once the consumer moves on.
        assert not os.path.exists(part.path)
    return writer.manifest(), parts


class ReadCounter(object):
    """A non-seekable stream that counts the bytes read from it."""

    def __init__(self, data):
        self._data = io.BytesIO(data)
        self.read_calls = 0

    def read(self, size=-1):
        self.read_calls += 1
        return self._data.read(size)


class Unreadable(object):
    def read(self, size=-1):
        raise AssertionError('the image must not be read')


# ---------------------------------------------------------------------------
# Decoding with the standard tools alone


def test_standard_tools_decode_a_multi_part_bundle(keys, workdir, tmpdir):
    data = image_bytes(400 * KIB, seed=7)
    out_dir = str(tmpdir.mkdir('out'))
    writer = make_writer(keys, workdir, threads=2)
    manifest, parts = bundle_to_dir(writer, data, out_dir)
    assert len(parts) >= 3
    assert [p.filename for p in parts] == [
        '{0}.part.{1:02d}'.format(PREFIX, i) for i in range(len(parts))]

    root = manifest_tree(manifest)
    image = root.find('image')
    assert root.find('version').text == '2007-10-10'
    assert root.find('bundler/name').text == 'eustore-plugin'
    assert root.find('machine_configuration/architecture').text == 'x86_64'
    assert root.find('machine_configuration/kernel_id') is None
    mappings = [(m.find('virtual').text, m.find('device').text) for m in
                root.findall('machine_configuration/block_device_mapping/'
                             'mapping')]
    assert mappings == [('ami', 'sda1'), ('root', '/dev/sda1'),
                        ('ephemeral0', 'sda2'), ('swap', 'sda3')]
    assert image.find('name').text == PREFIX
    assert image.find('user').text == '123456789012'
    assert image.find('type').text == 'machine'
    assert image.find('size').text == str(len(data))
    assert image.find('digest').get('algorithm') == 'SHA1'
    for tag in ('ec2_encrypted_key', 'user_encrypted_key'):
        assert image.find(tag).get('algorithm') == 'AES-128-CBC'
    listed = image.find('parts')
    assert listed.get('count') == str(len(parts))
    bundled = 0
    for node, part in zip(listed.findall('part'), parts):
        assert node.get('index') == str(part.index)
        assert node.find('filename').text == part.filename
        assert node.find('digest').get('algorithm') == 'SHA1'
        path = os.path.join(out_dir, part.filename)
        assert node.find('digest').text == sha1sum(path) == part.sha1
        bundled += os.path.getsize(path)
    assert image.find('bundled_size').text == str(bundled)
    assert writer.bundled_size == bundled

    # The user's key and the cloud's key both recover the same key and IV,
    # as lowercase hex text.
    key_hex, iv_hex, tar_path, extracted = decode_with_tools(
        manifest, out_dir, keys.user.key_path, str(tmpdir.mkdir('u')))
    ec2 = decode_with_tools(manifest, out_dir, keys.cloud.key_path,
                            str(tmpdir.mkdir('c')), key_field='ec2')
    assert (key_hex, iv_hex) == ec2[:2]
    assert len(key_hex) == len(iv_hex) == 32
    assert key_hex == key_hex.lower()
    with open(os.path.join(extracted, PREFIX), 'rb') as image_file:
        assert image_file.read() == data
    assert sha1sum(tar_path) == image.find('digest').text == \
        writer.image_digest
    listing = run(['tar', 'tvf', tar_path]).decode('utf-8').splitlines()
    assert len(listing) == 1
    assert listing[0].startswith('-rw-r--r--')
    assert ' {0} '.format(len(data)) in listing[0]

    # The signature verifies with openssl over the bytes in the file.
    signed_path = str(tmpdir.join('signed.bin'))
    sig_path = str(tmpdir.join('sig.bin'))
    with open(signed_path, 'wb') as signed:
        signed.write(signed_bytes(manifest))
    with open(sig_path, 'wb') as sig:
        sig.write(binascii.unhexlify(root.find('signature').text))
    out = run(['openssl', 'dgst', '-sha1', '-verify', keys.user.pubkey_path,
               '-signature', sig_path, signed_path])
    assert b'Verified OK' in out
    # ...and not with another key.
    with pytest.raises(AssertionError):
        run(['openssl', 'dgst', '-sha1', '-verify', keys.other.pubkey_path,
             '-signature', sig_path, signed_path])
    assert part_files(workdir) == []


def test_manifest_optional_fields_and_escaping(keys, workdir, tmpdir):
    writer = make_writer(keys, workdir, prefix='a&b<c>.img',
                         image_type='kernel')
    out_dir = str(tmpdir.mkdir('o'))
    manifest, _ = bundle_to_dir(writer, b'kernel', out_dir)
    root = manifest_tree(manifest)
    assert root.find('image/name').text == 'a&b<c>.img'
    assert root.find('image/type').text == 'kernel'
    assert root.find('machine_configuration/block_device_mapping') is None
    assert root.find('machine_configuration/kernel_id') is None
    with_ids = manifest_tree(writer.manifest(kernel_id='eki-12345678',
                                             ramdisk_id='eri-87654321'))
    assert with_ids.find('machine_configuration/kernel_id').text == \
        'eki-12345678'
    assert with_ids.find('machine_configuration/ramdisk_id').text == \
        'eri-87654321'
    reader = BundleReader(writer.manifest(kernel_id='eki-12345678',
                                          ramdisk_id='eri-87654321'),
                          out_dir, keys.user.cert_pem, keys.cloud.key_pem)
    assert (reader.kernel_id, reader.ramdisk_id, reader.image_type,
            reader.name, reader.size, reader.block_device_mappings) == \
        ('eki-12345678', 'eri-87654321', 'kernel', 'a&b<c>.img', 6, [])
    assert b''.join(reader.iter_image()) == b'kernel'
    assert writer.manifest_filename == 'a&b<c>.img.manifest.xml'


# ---------------------------------------------------------------------------
# Round trips through BundleReader


def reader_round_trip(keys, data, out_dir, private_key=None, **kwargs):
    writer = make_writer(keys, **kwargs)
    manifest, parts = bundle_to_dir(writer, data, out_dir)
    reader = BundleReader(manifest, out_dir, keys.user.cert_pem,
                          private_key or keys.user.key_pem)
    assert b''.join(reader.iter_image(chunk_size=50000)) == data
    assert reader.size == len(data)
    assert reader.name == PREFIX
    assert reader.image_type == 'machine'
    assert reader.architecture == 'x86_64'
    assert reader.digest == writer.image_digest
    assert [p.filename for p in reader.parts] == [p.filename for p in parts]
    return writer, parts


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('size', [0, 1, PART, PART + 1, 10 * PART + 12345])
def test_round_trip(keys, tmpdir, size, threads):
    data = image_bytes(size, seed=size)
    writer, parts = reader_round_trip(keys, data, str(tmpdir), threads=threads)
    assert writer.image_size == size
    if size > 5 * PART:
        assert len(parts) >= 3


def test_round_trip_with_cloud_key_and_default_block_size(keys, tmpdir):
    # Several 1 MiB compression blocks, so dictionaries carry across blocks.
    data = image_bytes(3 * 1024 * KIB + 999, seed=3)
    reader_round_trip(keys, data, str(tmpdir), threads=2,
                      private_key=keys.cloud.key_path,
                      block_size=pgzip.DEFAULT_BLOCK_SIZE, part_size=1000000)


@pytest.mark.parametrize('delta', [-1, 0, 1])
def test_part_boundaries(keys, tmpdir, delta):
    # Level 0 (stored) makes the bundled size independent of the random key
    # and the tar mtime, so a second run can be cut exactly at its end.
    data = image_bytes(100 * KIB, seed=5)
    first = make_writer(keys, compresslevel=0, part_size=10 ** 9)
    for _ in first.bundle(io.BytesIO(data), len(data)):
        pass
    total = first.bundled_size
    out_dir = str(tmpdir)
    writer, parts = reader_round_trip(keys, data, out_dir, compresslevel=0,
                                      part_size=total + delta)
    assert writer.bundled_size == total
    assert [p.size for p in parts] == ([total - 1, 1] if delta < 0
                                       else [total])


def test_reader_takes_parts_from_a_callable_of_streams(keys, tmpdir):
    data = image_bytes(300 * KIB, seed=11)
    out_dir = str(tmpdir)
    writer = make_writer(keys)
    manifest, parts = bundle_to_dir(writer, data, out_dir)
    asked = []

    def open_part(name):
        asked.append(name)
        with open(os.path.join(out_dir, name), 'rb') as part:
            return ReadCounter(part.read())  # not seekable
    reader = BundleReader(manifest, open_part, keys.user.cert_path,
                          keys.user.key_path)
    out = io.BytesIO()
    assert reader.extract(out) == len(data)
    assert out.getvalue() == data
    assert asked == [p.filename for p in parts]


# ---------------------------------------------------------------------------
# The parallel gzip writer


@pytest.mark.parametrize('threads', [1, 2, 3])
@pytest.mark.parametrize('size', [0, 1, 32 * KIB, 64 * KIB, 64 * KIB + 1,
                                  500 * KIB])
def test_parallel_gzip_is_one_standard_gzip_member(tmpdir, threads, size):
    data = image_bytes(size, seed=size + threads)
    out = []
    writer = pgzip.ParallelGzipWriter(out.append, ZLIB_6, threads=threads,
                                      block_size=64 * KIB)
    for start in range(0, len(data), 7000):   # writes not block aligned
        writer.write(data[start:start + 7000])
    writer.close()
    compressed = b''.join(out)
    assert gzip.GzipFile(fileobj=io.BytesIO(compressed)).read() == data
    # One member: zlib stops at the end of the first one with nothing left.
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decompressor.decompress(compressed) == data
    assert decompressor.unused_data == b''
    path = str(tmpdir.join('x.gz'))
    with open(path, 'wb') as gz_file:
        gz_file.write(compressed)
    run(['gzip', '-t', path])
    assert run(['gzip', '-d', '-c', path]) == data


@pytest.mark.parametrize('backend', pgzip.BACKENDS)
@pytest.mark.parametrize('zeros_first', [False, True])
@pytest.mark.parametrize('threads', [1, 2])
def test_parallel_gzip_reuses_zero_blocks_byte_for_byte(threads, zeros_first,
                                                        backend):
    deflater = pgzip.deflater_for('balanced', backend)
    block = 64 * KIB
    data = (os.urandom(block + 100) + b'\0' * (6 * block) + os.urandom(500) +
            b'\0' * (3 * block + 7))
    if zeros_first:
        # The first block has no dictionary: its output differs from that
        # of later zero blocks and must not be reused for them.
        data = b'\0' * (2 * block) + data
    out = []
    writer = pgzip.ParallelGzipWriter(out.append, deflater, threads=threads,
                                      block_size=block)
    writer.write(data)
    writer.close()
    # What compressing every block would give, without reuse.
    expected = [pgzip.GZIP_HEADER]
    dictionary = b''
    whole = len(data) - len(data) % block
    for start in range(0, whole, block):
        expected.append(deflater.compress_block(data[start:start + block],
                                                dictionary, False))
        dictionary = data[start + block - 32 * KIB:start + block] \
            if deflater.zdict else b''
    expected.append(deflater.compress_block(data[whole:], dictionary, True))
    expected.append(struct.pack('<II', zlib.crc32(data) & 0xffffffff,
                                len(data)))
    assert b''.join(out) == b''.join(expected)
    assert writer._zero_block_output is not None
    assert gzip.GzipFile(fileobj=io.BytesIO(b''.join(out))).read() == data


def _isal_imports():
    try:
        import isal.isal_zlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_isal_is_used_where_it_imports_and_zlib_elsewhere():
    expected = 'isal' if _isal_imports() else 'zlib'
    assert pgzip.DEFAULT_BACKEND == expected
    assert pgzip.deflater_for().backend == expected
    assert pgzip.BACKENDS[-1] == 'zlib'
    if not _isal_imports():
        with pytest.raises(ValueError) as caught:
            pgzip.Deflater('isal', 1)
        assert 'not available' in str(caught.value)


def test_every_named_level_exists_on_every_backend():
    assert pgzip.DEFAULT_COMPRESSION in pgzip.COMPRESSION_LEVELS
    for backend in ('isal', 'zlib'):
        assert pgzip.DEFAULT_COMPRESSION_BY_BACKEND[backend] in \
            pgzip.COMPRESSION_LEVELS
    assert pgzip.deflater_for(backend='zlib') == pgzip.deflater_for(
        pgzip.DEFAULT_COMPRESSION_BY_BACKEND['zlib'], 'zlib')
    for name in pgzip.COMPRESSION_LEVELS:
        assert sorted(pgzip.LEVELS[name]) == ['isal', 'zlib']
    # Fastest first, on both backends.
    for backend in ('isal', 'zlib'):
        numbers = [pgzip.LEVELS[name][backend]
                   for name in pgzip.COMPRESSION_LEVELS]
        assert numbers == sorted(set(numbers))
        assert numbers[0] >= 1   # never stored or Huffman-only


@pytest.mark.parametrize('name', pgzip.COMPRESSION_LEVELS)
def test_both_backends_decode_with_gzip_to_the_same_tar_stream(tmpdir, name):
    data = image_bytes(900 * KIB, seed=17) + b'\0' * (300 * KIB)
    stream = b''.join(tarstream.iter_tar_stream(
        io.BytesIO(data), len(data), PREFIX, 64 * KIB, mtime=1500000000))
    outputs = {}
    for backend in pgzip.BACKENDS:
        out = []
        writer = pgzip.ParallelGzipWriter(
            out.append, pgzip.deflater_for(name, backend), threads=2,
            block_size=64 * KIB)
        for start in range(0, len(stream), 10000):
            writer.write(stream[start:start + 10000])
        writer.close()
        path = str(tmpdir.join('{0}-{1}.gz'.format(name, backend)))
        with open(path, 'wb') as gz_file:
            gz_file.write(b''.join(out))
        run(['gzip', '-t', path])
        outputs[backend] = b''.join(out)
        assert run(['gzip', '-d', '-c', path]) == stream
    if len(outputs) == 2:
        # Two encoders, one stream: proof both really ran.
        assert outputs['isal'] != outputs['zlib']


class FailingOutput(object):
    """An output callable that fails on its ``fail_at``-th call."""

    def __init__(self, fail_at):
        self.calls = 0
        self.fail_at = fail_at

    def __call__(self, data):
        self.calls += 1
        if self.calls == self.fail_at:
            raise IOError('disk full')


@pytest.mark.parametrize('threads', [1, 2])
def test_parallel_gzip_raises_what_its_output_raised(threads):
    threads_before = set(threading.enumerate())
    output = FailingOutput(3)
    writer = pgzip.ParallelGzipWriter(output, threads=threads,
                                      block_size=64 * KIB)
    data = os.urandom(64 * KIB)
    with pytest.raises(IOError) as caught:
        for _ in range(50):
            writer.write(data)
        writer.close()
    assert 'disk full' in str(caught.value)
    writer.abort()
    # Nothing more is written once output has failed.
    assert output.calls == 3
    deadline = time.time() + 5
    while set(threading.enumerate()) - threads_before and \
            time.time() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - threads_before == set()


@pytest.mark.parametrize('kwargs', [
    {'compression': 'fastest'}, {'compression': 6},
    {'compression': 'small', 'compresslevel': 6}, {'compresslevel': 10},
])
def test_bad_compression_arguments(keys, kwargs):
    with pytest.raises(BundleError) as caught:
        make_writer(keys, **kwargs)
    assert 'compress' in str(caught.value)


@pytest.mark.parametrize('name', pgzip.COMPRESSION_LEVELS)
def test_named_levels_round_trip(keys, tmpdir, name):
    data = image_bytes(5 * PART, seed=23)
    writer, _ = reader_round_trip(keys, data, str(tmpdir), compression=name,
                                  threads=2)
    assert writer.deflater == pgzip.deflater_for(name)


def test_default_compression(keys):
    assert make_writer(keys).deflater == pgzip.deflater_for(
        pgzip.DEFAULT_COMPRESSION)


def test_compresslevel_is_a_zlib_level(keys):
    assert make_writer(keys, compresslevel=3).deflater == \
        pgzip.Deflater('zlib', 3)
    assert make_writer(keys, compression=pgzip.Deflater('zlib', 9)) \
        .deflater == pgzip.Deflater('zlib', 9)


def test_parallel_gzip_ratio_is_close_to_single_stream():
    data = image_bytes(2 * 1024 * KIB, seed=9)
    out = []
    writer = pgzip.ParallelGzipWriter(out.append, ZLIB_6, threads=2,
                                      block_size=128 * KIB)
    writer.write(data)
    writer.close()
    parallel = len(b''.join(out))
    single = len(zlib.compress(data, 6))
    limit = 1.01 if ZLIB_6.zdict else 1.05
    assert parallel <= single * limit


JAVA_GUNZIP = '''
import java.io.*;
import java.security.MessageDigest;
import java.util.zip.GZIPInputStream;

public class Gunzip {
    public static void main(String[] args) throws Exception {
        MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
        long total = 0;
        try (InputStream in = new GZIPInputStream(
                new FileInputStream(args[0]))) {
            byte[] buffer = new byte[65536];
            int n;
            while ((n = in.read(buffer)) > 0) {
                sha1.update(buffer, 0, n);
                total += n;
            }
        }
        StringBuilder hex = new StringBuilder();
        for (byte b : sha1.digest()) hex.append(String.format("%02x", b));
        System.out.println(total + " " + hex);
    }
}
'''


def _on_path(program):
    return any(os.access(os.path.join(directory, program), os.X_OK)
               for directory in os.environ.get('PATH', '').split(os.pathsep))


@pytest.mark.parametrize('backend', pgzip.BACKENDS)
def test_java_gzipinputstream_reads_parallel_gzip(tmpdir, backend):
    if not _on_path('java'):
        pytest.skip('no java on PATH: cannot check GZIPInputStream')
    data = image_bytes(700 * KIB, seed=21) + b'\0' * (200 * KIB)
    out = []
    writer = pgzip.ParallelGzipWriter(
        out.append, pgzip.deflater_for(backend=backend), threads=2,
        block_size=64 * KIB)
    writer.write(data)
    writer.close()
    gz_path = str(tmpdir.join('data.gz'))
    with open(gz_path, 'wb') as gz_file:
        gz_file.write(b''.join(out))
    source = str(tmpdir.join('Gunzip.java'))
    with open(source, 'w') as java_file:
        java_file.write(JAVA_GUNZIP)
    try:
        result = run(['java', source, gz_path]).decode('ascii').split()
    except AssertionError as err:
        if 'source' in str(err).lower() and 'launch' in str(err).lower():
            pytest.skip('java cannot run single-file sources (needs JDK 11+)')
        raise
    assert result == [str(len(data)), hashlib.sha1(data).hexdigest()]


# ---------------------------------------------------------------------------
# The tar header


@pytest.mark.parametrize('size', [0, 5, tarstream.MAX_OCTAL_SIZE,
                                  tarstream.MAX_OCTAL_SIZE + 1,
                                  10 * 2 ** 30])
def test_tar_header_sizes_read_back(tmpdir, size):
    header = tarstream.member_header(PREFIX, size, mtime=1500000000)
    info = tarfile.open(fileobj=io.BytesIO(header + b'\0' * 1024),
                        mode='r|').next()
    assert (info.name, info.size, info.mode, info.mtime) == \
        (PREFIX, size, 0o644, 1500000000)
    assert info.isfile()
    # GNU tar lists it (then complains the data is missing, hence no check
    # of its exit status).
    path = str(tmpdir.join('h.tar'))
    with open(path, 'wb') as tar_file:
        tar_file.write(header + b'\0' * 1024)
    listing = run(['sh', '-c', 'tar tvf {0} 2>/dev/null; true'.format(path)])
    assert ' {0} '.format(size).encode('ascii') in listing
    assert PREFIX.encode('ascii') in listing


def test_tar_long_member_name_reads_back():
    name = 'n' * 150 + '.img'
    stream = b''.join(tarstream.iter_tar_stream(io.BytesIO(b'abc'), 3, name,
                                                64 * KIB))
    assert len(stream) % tarstream.RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(stream)) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == [name]
        assert archive.extractfile(members[0]).read() == b'abc'


# ---------------------------------------------------------------------------
# Errors; after each one the work directory holds no part files


def test_short_stream_is_refused_and_cleaned_up(keys, workdir):
    data = os.urandom(10 * PART)
    writer = make_writer(keys, workdir)
    seen = []
    with pytest.raises(ImageSourceError) as caught:
        for part in writer.bundle(io.BytesIO(data[:-10]), len(data)):
            seen.append(part)
    assert 'truncated' in str(caught.value)
    assert str(len(data)) in str(caught.value)
    assert len(seen) >= 2     # it failed after handing over some parts
    assert os.listdir(workdir) == []
    with pytest.raises(ManifestError):
        writer.manifest()
    assert writer.image_digest is None


def test_long_stream_is_refused_and_cleaned_up(keys, workdir):
    data = image_bytes(3 * PART, seed=3)
    writer = make_writer(keys, workdir)
    with pytest.raises(ImageSourceError) as caught:
        for _ in writer.bundle(ReadCounter(data + b'x'), len(data)):
            pass
    assert 'more than' in str(caught.value)
    assert os.listdir(workdir) == []
    with pytest.raises(ManifestError):
        writer.manifest()


def test_read_error_mid_way_is_reported_and_cleaned_up(keys, workdir):
    data = os.urandom(8 * PART)
    writer = make_writer(keys, workdir)
    with pytest.raises(ImageSourceError) as caught:
        for _ in writer.bundle(BrokenStream(data, 5 * PART), len(data)):
            pass
    assert 'connection reset' in str(caught.value)
    assert os.listdir(workdir) == []


def test_size_is_required_for_a_pipe(keys, workdir):
    read_end, write_end = os.pipe()
    try:
        with io.open(read_end, 'rb', closefd=False) as pipe:
            with pytest.raises(ImageSourceError) as caught:
                make_writer(keys, workdir).bundle(pipe)
        assert 'size must be given' in str(caught.value)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_bundles_a_member_streamed_out_of_a_tar_gz(keys, tmpdir):
    # How the install command reads images: out of a downloading tarball,
    # so the source cannot seek.
    data = image_bytes(6 * PART + 3, seed=40)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        info = tarfile.TarInfo('starter/image.img')
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    out_dir = str(tmpdir)
    with tarfile.open(fileobj=ReadCounter(buffer.getvalue()),
                      mode='r|gz') as archive:
        member = archive.next()
        writer = make_writer(keys)
        for part in writer.bundle(archive.extractfile(member), member.size):
            shutil.copy(part.path, os.path.join(out_dir, part.filename))
    reader = BundleReader(writer.manifest(), out_dir, keys.user.cert_pem,
                          keys.user.key_pem)
    assert b''.join(reader.iter_image()) == data


def test_image_over_10_gib_is_refused_before_reading(keys, workdir):
    writer = make_writer(keys, workdir)
    with pytest.raises(ImageSourceError) as caught:
        writer.bundle(Unreadable(), 10 * 2 ** 30 + 1)
    assert '10 GiB' in str(caught.value)
    assert os.listdir(workdir) == []


def test_mismatched_private_key_is_refused_up_front(keys, workdir):
    with pytest.raises(CredentialError) as caught:
        BundleWriter(PREFIX, 'machine', 'x86_64', ACCOUNT,
                     keys.user.cert_path, keys.other.key_path,
                     keys.cloud.cert_path, workdir=workdir)
    assert 'does not belong' in str(caught.value)


@pytest.mark.parametrize('which', ['user_cert', 'user_private_key',
                                   'cloud_cert'])
def test_unreadable_credential_paths(keys, workdir, tmpdir, which):
    args = {'user_cert': keys.user.cert_path,
            'user_private_key': keys.user.key_path,
            'cloud_cert': keys.cloud.cert_path}
    missing = str(tmpdir.join('no-such.pem'))
    args[which] = missing
    with pytest.raises(CredentialError) as caught:
        BundleWriter(PREFIX, 'machine', 'x86_64', ACCOUNT, workdir=workdir,
                     **args)
    assert missing in str(caught.value)
    args[which] = str(tmpdir)          # a directory, not a file
    with pytest.raises(CredentialError):
        BundleWriter(PREFIX, 'machine', 'x86_64', ACCOUNT, workdir=workdir,
                     **args)
    args[which] = b'-----BEGIN CERTIFICATE-----\nnonsense\n'
    with pytest.raises(CredentialError):
        BundleWriter(PREFIX, 'machine', 'x86_64', ACCOUNT, workdir=workdir,
                     **args)


def test_unreadable_image_path(keys, workdir, tmpdir):
    writer = make_writer(keys, workdir)
    missing = str(tmpdir.join('missing.img'))
    with pytest.raises(ImageSourceError) as caught:
        writer.bundle(missing)
    assert missing in str(caught.value)


def test_image_path_with_size_from_the_file(keys, workdir, tmpdir):
    data = image_bytes(150 * KIB, seed=4)
    path = str(tmpdir.join('disk.img'))
    with open(path, 'wb') as image:
        image.write(data)
    writer = make_writer(keys, workdir)
    assert sum(1 for _ in writer.bundle(path)) >= 1
    assert writer.image_size == len(data)


@pytest.mark.parametrize('kwargs', [
    {'prefix': 'a/b'}, {'prefix': ''}, {'image_type': 'disk'},
    {'part_size': 0}, {'max_pending_parts': -1}, {'threads': 0},
])
def test_bad_arguments(keys, workdir, kwargs):
    with pytest.raises(BundleError):
        make_writer(keys, workdir, **kwargs)


def test_bad_account_id(keys):
    with pytest.raises(BundleError) as caught:
        BundleWriter(PREFIX, 'machine', 'x86_64', '1234', keys.user.cert_pem,
                     keys.user.key_pem, keys.cloud.cert_pem)
    assert '12 digits' in str(caught.value)


def test_existing_part_file_is_not_overwritten(keys, workdir):
    stranger = os.path.join(workdir, PREFIX + '.part.01')
    with open(stranger, 'wb') as other:
        other.write(b'not ours')
    writer = make_writer(keys, workdir)
    with pytest.raises(BundleError) as caught:
        for _ in writer.bundle(io.BytesIO(image_bytes(4 * PART)), 4 * PART):
            pass
    assert 'already exists' in str(caught.value)
    assert part_files(workdir) == [PREFIX + '.part.01']
    with open(stranger, 'rb') as other:
        assert other.read() == b'not ours'


@pytest.mark.parametrize('how', ['break', 'close', 'raise'])
def test_consumer_stopping_early_leaves_nothing(keys, workdir, how):
    # Compare thread identities, not counts: a thread left over from an
    # earlier test may end meanwhile and hide one of ours.
    threads_before = set(threading.enumerate())
    data = image_bytes(20 * PART, seed=8)
    writer = make_writer(keys, workdir, threads=2)
    parts = writer.bundle(io.BytesIO(data), len(data))
    if how == 'break':
        for _ in parts:
            break
        parts.close()
    elif how == 'close':
        next(parts)
        next(parts)
        parts.close()
    else:
        with pytest.raises(RuntimeError):
            for index, _ in enumerate(parts):
                if index == 2:
                    parts.throw(RuntimeError('upload failed'))
    assert part_files(workdir) == []
    with pytest.raises(ManifestError):
        writer.manifest()

    def ours():
        return [thread for thread in threading.enumerate()
                if thread not in threads_before]
    deadline = time.time() + 5
    while ours() and time.time() < deadline:
        time.sleep(0.01)
    assert ours() == []


def test_default_workdir_is_removed(keys, tmpdir):
    writer = make_writer(keys, None)
    seen = []
    for part in writer.bundle(io.BytesIO(b'x' * 1000), 1000):
        seen.append(os.path.dirname(part.path))
    assert seen and not os.path.exists(seen[0])


def test_reader_refuses_a_tampered_part(keys, tmpdir):
    data = image_bytes(5 * PART, seed=12)
    out_dir = str(tmpdir)
    manifest, parts = bundle_to_dir(make_writer(keys), data, out_dir)
    victim = os.path.join(out_dir, parts[1].filename)
    with open(victim, 'r+b') as part:
        part.seek(100)
        byte = part.read(1)
        part.seek(100)
        part.write(bytearray([byte[0] ^ 1]) if isinstance(byte[0], int)
                   else chr(ord(byte) ^ 1))
    reader = BundleReader(manifest, out_dir, keys.user.cert_pem,
                          keys.user.key_pem)
    with pytest.raises(BundleVerificationError) as caught:
        for _ in reader.iter_image():
            pass
    assert parts[1].filename in str(caught.value)


def test_reader_refuses_a_tampered_manifest(keys, tmpdir):
    data = image_bytes(2 * PART, seed=13)
    out_dir = str(tmpdir)
    manifest, _ = bundle_to_dir(make_writer(keys), data, out_dir)
    size = '<size>{0}</size>'.format(len(data)).encode('ascii')
    assert size in manifest
    tampered = manifest.replace(size, '<size>{0}</size>'.format(
        len(data) + 1).encode('ascii'))
    with pytest.raises(BundleVerificationError) as caught:
        BundleReader(tampered, out_dir, keys.user.cert_pem,
                     keys.user.key_pem)
    assert 'signature' in str(caught.value)
    # Signed by another key: the user's certificate does not verify it.
    with pytest.raises(BundleVerificationError):
        BundleReader(manifest, out_dir, keys.other.cert_pem,
                     keys.user.key_pem)
    # A second <image> element outside the signed bytes is not accepted.
    doubled = manifest.replace(b'</manifest>',
                               b'<image><name>x</name></image></manifest>')
    with pytest.raises(ManifestError):
        BundleReader(doubled, out_dir, keys.user.cert_pem, keys.user.key_pem)
    # The untouched manifest is fine; a key that fits neither copy is not.
    with pytest.raises(CredentialError):
        BundleReader(manifest, out_dir, keys.user.cert_pem,
                     keys.other.key_pem)
    BundleReader(manifest, out_dir, keys.user.cert_pem, keys.user.key_pem)


def test_parse_manifest_refuses_doctype():
    with pytest.raises(ManifestError):
        parse_manifest(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>'
                       b'<manifest/>')


# ---------------------------------------------------------------------------
# Back-pressure


@pytest.mark.parametrize('pending', [0, 2])
def test_slow_consumer_bounds_part_files(keys, workdir, pending):
    # Incompressible, so the bundle has about 30 parts.
    data = os.urandom(30 * PART)
    writer = make_writer(keys, workdir, max_pending_parts=pending, threads=2)
    counts = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            counts.append(len(part_files(workdir)))
            time.sleep(0.002)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        parts = 0
        for _ in writer.bundle(io.BytesIO(data), len(data)):
            time.sleep(0.05)   # a slow upload
            counts.append(len(part_files(workdir)))
            parts += 1
    finally:
        stop.set()
        watcher.join()
    assert parts >= 20
    assert max(counts) <= pending + 1
    # The pipeline did work ahead up to the limit while we were "uploading".
    assert max(counts) == pending + 1
    assert part_files(workdir) == []


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='mallopt is glibc\'s')
def test_malloc_arenas_are_limited_unless_the_user_says_otherwise():
    # In a child: mallopt changes the process for good.
    code = ('import sys; from eustore_plugin.install.builtin import '
            'limit_malloc_arenas as limit; sys.stdout.write(str(limit()))')
    env = dict(os.environ)
    env.pop('MALLOC_ARENA_MAX', None)
    assert subprocess.check_output([sys.executable, '-c', code],
                                   env=env) == b'True'
    env['MALLOC_ARENA_MAX'] = '4'
    assert subprocess.check_output([sys.executable, '-c', code],
                                   env=env) == b'False'
