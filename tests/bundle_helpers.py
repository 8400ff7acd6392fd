# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Shared helpers for the bundle tests: throwaway RSA credentials and
decoding bundles with the standard command-line tools only."""

from __future__ import absolute_import, division, print_function

import binascii
import datetime
import hashlib
import os
import random
import re
import subprocess
import xml.etree.ElementTree as ElementTree

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


class KeyPair(object):
    """An RSA key and its self-signed certificate, as PEM bytes and files."""

    def __init__(self, directory, role):
        key = rsa.generate_private_key(65537, 2048, default_backend())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             u'eustore-test-' + role)])
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(random.randint(1, 2 ** 60))
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .sign(key, hashes.SHA256(), default_backend()))
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption())
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.pubkey_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_path = os.path.join(directory, role + '-pk.pem')
        self.cert_path = os.path.join(directory, role + '-cert.pem')
        self.pubkey_path = os.path.join(directory, role + '-pub.pem')
        for path, data in ((self.key_path, self.key_pem),
                           (self.cert_path, self.cert_pem),
                           (self.pubkey_path, self.pubkey_pem)):
            with open(path, 'wb') as pem:
                pem.write(data)


def random_bytes(rng, count):
    """``count`` bytes from the seeded ``rng`` (fast on both Pythons)."""
    if not count:
        return b''
    return binascii.unhexlify('%0*x' % (2 * count, rng.getrandbits(8 * count)))


def image_bytes(size, seed=1):
    """Seeded image-like bytes: random, text and zero stretches."""
    rng = random.Random(seed)
    pieces = []
    total = 0
    while total < size:
        kind = rng.randint(0, 2)
        length = rng.randint(1, 50000)
        if kind == 0:
            piece = random_bytes(rng, length)
        elif kind == 1:
            piece = (u'line {0} of some config text = value\n'.format(
                rng.randint(0, 10 ** 6)) * (length // 30 + 1)).encode(
                    'ascii')[:length]
        else:
            piece = b'\0' * length
        pieces.append(piece)
        total += len(piece)
    return b''.join(pieces)[:size]


def run(args, stdin=None, cwd=None):
    """Run a tool; return its stdout, failing loudly with its stderr."""
    process = subprocess.Popen(args, stdin=subprocess.PIPE if stdin is not
                               None else None, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=cwd)
    out, err = process.communicate(stdin)
    if process.returncode != 0:
        raise AssertionError('{0} failed ({1}): {2}'.format(
            ' '.join(args), process.returncode, err.decode('utf-8',
                                                           'replace')))
    return out


def sha1_file(path):
    with open(path, 'rb') as data:
        return hashlib.sha1(data.read()).hexdigest()


def sha1sum(path):
    """SHA-1 by the coreutils tool."""
    return run(['sha1sum', path]).split()[0].decode('ascii')


def manifest_tree(manifest):
    return ElementTree.fromstring(manifest)


def signed_bytes(manifest):
    """The bytes the signature covers, cut out of the document text."""
    config = re.search(b'<machine_configuration>.*</machine_configuration>',
                       manifest, re.S).group(0)
    image = re.search(b'<image>.*</image>', manifest, re.S).group(0)
    return config + image


def openssl_decrypt_hex(encrypted_hex, key_path, workdir):
    """Decrypt a manifest key/IV field with ``openssl pkeyutl``; returns the
    plaintext (the hex text of the key or IV)."""
    path = os.path.join(workdir, 'enc.bin')
    with open(path, 'wb') as enc:
        enc.write(binascii.unhexlify(encrypted_hex))
    return run(['openssl', 'pkeyutl', '-decrypt', '-inkey', key_path,
                '-in', path])


def decode_with_tools(manifest, parts_dir, key_path, workdir,
                      key_field='user'):
    """Unbundle with openssl, gzip and tar alone.

    Returns (key_hex, iv_hex, tar_path, extract_dir).
    """
    image = manifest_tree(manifest).find('image')
    key_hex = openssl_decrypt_hex(
        image.find(key_field + '_encrypted_key').text, key_path,
        workdir).decode('ascii')
    iv_hex = openssl_decrypt_hex(
        image.find(key_field + '_encrypted_iv').text, key_path,
        workdir).decode('ascii')
    encrypted = os.path.join(workdir, 'bundle.enc')
    with open(encrypted, 'wb') as out:
        for part in sorted(image.find('parts').findall('part'),
                           key=lambda node: int(node.get('index'))):
            with open(os.path.join(parts_dir, part.find('filename').text),
                      'rb') as data:
                out.write(data.read())
    gz_path = os.path.join(workdir, 'bundle.tar.gz')
    run(['openssl', 'enc', '-d', '-aes-128-cbc', '-K', key_hex, '-iv',
         iv_hex, '-in', encrypted, '-out', gz_path])
    run(['gzip', '-t', gz_path])
    tar_path = os.path.join(workdir, 'bundle.tar')
    with open(tar_path, 'wb') as tar:
        tar.write(run(['gzip', '-d', '-c', gz_path]))
    extract_dir = os.path.join(workdir, 'extracted')
    os.mkdir(extract_dir)
    run(['tar', 'xf', tar_path, '-C', extract_dir])
    return key_hex, iv_hex, tar_path, extract_dir


def part_files(directory):
    return sorted(name for name in os.listdir(directory)
                  if '.part.' in name)
