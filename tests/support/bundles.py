# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Decoding bundles with the standard command-line tools only."""

from __future__ import absolute_import, division, print_function

import binascii
import hashlib
import os
import re
import xml.etree.ElementTree as ElementTree

from tests.support.commands import run_tool as run


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
