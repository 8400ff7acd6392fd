# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
BundleReader: verify and unpack an S3-backed bundle, streaming -- the
tests' independent reader of what BundleWriter writes (the cloud is the
product's only reader of bundles; the standard tools are the tests' other
one, in bundles.py).

The order of checks is chosen so nothing unauthenticated is used: the
manifest signature is verified first (over the exact bytes in the file),
then each part's SHA-1 is checked against the signed manifest before any of
its bytes are decrypted, and at the end the SHA-1 of the whole tar stream
is compared with the manifest's image digest.  Memory stays constant: parts
are read in chunks and decompression output is capped per call (a run of
zeros inflates a thousandfold).

The tar stream is read with the standard ``tarfile`` module in stream mode,
so bundles from other tools (pax or GNU headers) are read too, and the
writer's hand-made headers are checked by an independent implementation.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import io
import os
import tarfile
import tempfile
import zlib

from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
import six

from eustore_plugin.bundle import credentials
from eustore_plugin.bundle.errors import (BundleError, BundleVerificationError,
                                          CredentialError)
from eustore_plugin.bundle.manifest import parse_manifest

CHUNK_SIZE = 1024 * 1024
# Parts given as non-seekable streams are staged here while being hashed;
# beyond this size the staging copy moves to a temporary file.
_SPOOL_MEMORY = 1024 * 1024


def _close(fileobj):
    close = getattr(fileobj, 'close', None)
    if close is not None:
        close()


class _GunzipStream(object):
    """A read-only file over the gunzipped, decrypted part data, hashing
    everything it produces (the tar stream) as it goes."""

    def __init__(self, compressed_chunks):
        self._chunks = compressed_chunks
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b''
        # True when the last call filled its output limit, so zlib may hold
        # more output even with no input left.
        self._output_limited = False
        self._eof = False
        self.sha1 = hashlib.sha1()
        self.length = 0

    def read(self, size=-1):
        if size is None or size < 0:
            pieces = []
            while True:
                piece = self.read(CHUNK_SIZE)
                if not piece:
                    return b''.join(pieces)
                pieces.append(piece)
        while size and not self._eof:
            if not self._input and not self._output_limited:
                self._input = next(self._chunks, b'')
                if not self._input:
                    self._end_of_input()
                    break
            try:
                data = self._decompressor.decompress(self._input, size)
            except zlib.error as err:
                raise BundleVerificationError(
                    'the image is not valid gzip data ({0}); the bundle is '
                    'damaged'.format(err))
            self._output_limited = len(data) == size
            self._input = self._decompressor.unconsumed_tail
            if self._decompressor.unused_data:
                # Another gzip member follows: gzip -d reads them as one.
                self._input = self._decompressor.unused_data + self._input
                self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if data:
                self.sha1.update(data)
                self.length += len(data)
                return data
        return b''

    def _end_of_input(self):
        self._eof = True
        # A member cut off before its trailer: Python 3 says so with
        # ``eof``; Python 2 only by handing out the rest on flush().
        if not getattr(self._decompressor, 'eof', True) or \
                self._decompressor.flush():
            raise BundleVerificationError(
                'the image\'s gzip stream is cut off; the bundle is '
                'incomplete')

    def drain(self):
        while self.read(CHUNK_SIZE):
            pass


class BundleReader(object):
    """Verify and unpack one bundle.

    ``manifest``: the manifest bytes (or a path to the file).
    ``parts``: a directory holding the part files, or a callable taking a
    part's file name and returning a path or a readable binary file.
    ``user_cert``: the bundler's certificate, to verify the signature.
    ``private_key``: a key that decrypts the user's or the cloud's copy of
    the AES key and IV.

    The signature and the key are checked here; ``iter_image()`` then
    streams the image.  Parsed fields: ``name``, ``image_type``,
    ``architecture``, ``size``, ``bundled_size``, ``digest``,
    ``kernel_id``, ``ramdisk_id``, ``user``, ``parts``,
    ``block_device_mappings``, ``product_codes`` and ``manifest``.
    """

    def __init__(self, manifest, parts, user_cert, private_key):
        if callable(parts):
            self._open_part = parts
        elif isinstance(parts, six.string_types) and os.path.isdir(parts):
            self._open_part = lambda name: os.path.join(parts, name)
        else:
            raise BundleError('parts must be a directory or a callable, not '
                              '{0!r}'.format(parts))
        if isinstance(manifest, six.string_types) and \
                not manifest.lstrip().startswith('<'):
            try:
                with open(manifest, 'rb') as manifest_file:
                    manifest = manifest_file.read()
            except (IOError, OSError) as err:
                raise BundleError('cannot read manifest {0}: {1}'
                                  .format(manifest, err.strerror or err))
        if isinstance(manifest, six.text_type):
            manifest = manifest.encode('utf-8')
        self.manifest = parse_manifest(manifest)
        certificate = credentials.load_certificate(user_cert,
                                                   'user certificate')
        credentials.verify_sha1(certificate, self.manifest.signed_data,
                                self.manifest.signature)
        key = credentials.load_private_key(private_key, 'private key')
        self._key, self._iv = self._decrypt_key_and_iv(key)

    def _decrypt_key_and_iv(self, private_key):
        fields = self.manifest
        for key_hex, iv_hex in ((fields.user_encrypted_key,
                                 fields.user_encrypted_iv),
                                (fields.ec2_encrypted_key,
                                 fields.ec2_encrypted_iv)):
            key = credentials.decrypt_hex_text(private_key, key_hex, 16)
            if key is not None:
                iv = credentials.decrypt_hex_text(private_key, iv_hex, 16)
                if iv is None:
                    raise BundleVerificationError(
                        'the manifest\'s key decrypts but its IV does not; '
                        'the manifest is damaged')
                return key, iv
        raise CredentialError(
            'the private key decrypts neither the user\'s nor the cloud\'s '
            'copy of the bundle key; pass the key of the certificate the '
            'bundle was made for')

    def __getattr__(self, name):
        # Parsed fields read straight through from the manifest.
        if name in ('name', 'image_type', 'architecture', 'size',
                    'bundled_size', 'digest', 'kernel_id', 'ramdisk_id',
                    'user', 'parts', 'block_device_mappings',
                    'product_codes'):
            return getattr(self.__dict__['manifest'], name)
        raise AttributeError(name)

    def _verified_part(self, part):
        """A binary file positioned at the start of ``part``'s data, whose
        SHA-1 has been checked.  The caller closes it."""
        source = self._open_part(part.filename)
        if isinstance(source, six.string_types):
            try:
                fileobj = io.open(source, 'rb')
            except (IOError, OSError) as err:
                raise BundleError('cannot read part {0}: {1}'
                                  .format(source, err.strerror or err))
        else:
            fileobj = source
        try:
            # Python 2 files have no seekable(): those we opened are io
            # objects, and anything else without it is treated as a stream.
            seekable = getattr(fileobj, 'seekable', None)
            seekable = bool(seekable and seekable())
            if seekable:
                start = fileobj.tell()
                staged = None
            else:
                staged = tempfile.SpooledTemporaryFile(_SPOOL_MEMORY)
            sha1 = hashlib.sha1()
            while True:
                chunk = fileobj.read(CHUNK_SIZE)
                if not chunk:
                    break
                sha1.update(chunk)
                if staged is not None:
                    staged.write(chunk)
            if sha1.hexdigest() != part.digest:
                raise BundleVerificationError(
                    'part {0} has SHA-1 {1} but the manifest says {2}; the '
                    'part is damaged or was replaced'
                    .format(part.filename, sha1.hexdigest(), part.digest))
            if staged is None:
                fileobj.seek(start)
                return fileobj
            _close(fileobj)
            staged.seek(0)
            return staged
        except BaseException:
            _close(fileobj)
            raise

    def _iter_decrypted(self):
        cipher = Cipher(algorithms.AES(self._key), modes.CBC(self._iv),
                        backend=default_backend())
        decryptor = cipher.decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        for part in self.manifest.parts:
            fileobj = self._verified_part(part)
            try:
                while True:
                    chunk = fileobj.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    data = unpadder.update(decryptor.update(chunk))
                    if data:
                        yield data
            finally:
                _close(fileobj)
        try:
            tail = unpadder.update(decryptor.finalize()) + \
                unpadder.finalize()
        except ValueError:
            raise BundleVerificationError(
                'the encrypted image has bad padding or a length that is not '
                'a whole number of AES blocks; the bundle is damaged')
        if tail:
            yield tail

    def iter_image(self, chunk_size=CHUNK_SIZE):
        """Yield the image bytes in chunks of up to ``chunk_size``.

        Raises BundleVerificationError on any mismatch; when that happens
        after some chunks were yielded, discard them.
        """
        stream = _GunzipStream(self._iter_decrypted())
        try:
            archive = tarfile.open(fileobj=stream, mode='r|')
            member = archive.next()
        except tarfile.TarError as err:
            raise BundleVerificationError(
                'the image is not a tar stream ({0}); the bundle is damaged'
                .format(err))
        if member is None or not member.isfile():
            raise BundleVerificationError(
                'the bundle\'s tar stream does not start with a regular file')
        if member.size != self.manifest.size:
            raise BundleVerificationError(
                'the bundled image is {0} bytes but the manifest says {1}'
                .format(member.size, self.manifest.size))
        data_file = archive.extractfile(member)
        remaining = member.size
        while remaining:
            chunk = data_file.read(min(chunk_size, remaining))
            if not chunk:
                raise BundleVerificationError(
                    'the bundled image ends {0} bytes early; the bundle is '
                    'damaged'.format(remaining))
            remaining -= len(chunk)
            yield chunk
        try:
            extra = archive.next()
        except tarfile.TarError as err:
            raise BundleVerificationError(
                'the bundle\'s tar stream is damaged after the image ({0})'
                .format(err))
        if extra is not None:
            raise BundleVerificationError(
                'the bundle\'s tar stream holds more than the image ({0}); '
                'it was not made by a bundler'.format(extra.name))
        stream.drain()
        if stream.sha1.hexdigest() != self.manifest.digest:
            raise BundleVerificationError(
                'the tar stream has SHA-1 {0} but the manifest says {1}; the '
                'bundle is damaged'.format(stream.sha1.hexdigest(),
                                           self.manifest.digest))

    def extract(self, fileobj):
        """Write the whole image to ``fileobj``; returns its byte count."""
        total = 0
        for chunk in self.iter_image():
            fileobj.write(chunk)
            total += len(chunk)
        return total
