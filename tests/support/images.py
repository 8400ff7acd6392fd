# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Seeded image data: ``image_bytes`` for the small images of tests and the
demo (fast to make, in memory), ``write_disk_image`` for the benchmarks'
large ones (calibrated against real disks' compressibility).
"""

from __future__ import absolute_import, division

import binascii
import io
import random

MIB = 1024 * 1024


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


def write_disk_image(path, size, seed):
    """Write ``size`` bytes of seeded disk-image-like data to ``path``."""
    from cryptography.hazmat.backends import default_backend
    from cryptography.hazmat.primitives.ciphers import (Cipher, algorithms,
                                                        modes)
    rng = random.Random(seed)
    key = bytes(bytearray(rng.getrandbits(8) for _ in range(16)))
    keystream = Cipher(algorithms.AES(key), modes.CTR(b'\0' * 16),
                       backend=default_backend()).encryptor()
    zero_mib = b'\0' * MIB

    def zero_chunk():
        return zero_mib

    def random_chunk():
        return keystream.update(zero_mib)
    # Text: lines of words from a made-up vocabulary, as in logs and configs.
    vocabulary = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz')
                          for _ in range(rng.randint(2, 10)))
                  for _ in range(3000)]
    text_lines = []
    for _ in range(60000):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(3, 12))]
        if rng.random() < 0.3:
            words.append('= {0}'.format(rng.randint(0, 99999)))
        text_lines.append(' '.join(words))
    text_pool = ('\n'.join(text_lines) + '\n').encode('ascii')
    # Binary: code-like data, short snippets reused with a skewed
    # (Pareto) frequency between literal bytes, all drawn from a skewed
    # byte distribution.  Calibrated on /usr/bin and /usr/lib: zlib -6
    # compresses both at about 16 MiB/s per core, to about 0.42-0.44.
    skew = bytearray(256)
    for value in range(256):
        skew[value] = 0 if value < 40 else (value % 16 if value < 200
                                            else value)
    skew = bytes(skew)
    snippets = [keystream.update(b'\0' * rng.randint(2, 8)).translate(skew)
                for _ in range(8192)]
    pieces = []
    pool_size = 0
    while pool_size < 4 * MIB:
        if rng.random() < 0.5:
            piece = keystream.update(b'\0' * rng.randint(1, 8)).translate(
                skew)
        else:
            piece = snippets[int(rng.paretovariate(1.2)) % len(snippets)]
        pieces.append(piece)
        pool_size += len(piece)
    binary_pool = b''.join(pieces)

    def binary_chunk():
        # A fresh byte permutation keeps the pool's structure (and so its
        # compressibility) but makes every segment new data.
        permutation = bytearray(range(256))
        rng.shuffle(permutation)
        start = rng.randint(0, len(binary_pool) - MIB)
        return binary_pool[start:start + MIB].translate(bytes(permutation))

    written = 0
    with open(path, 'wb') as image:
        while written < size:
            kind = rng.random()
            if kind < 0.30:
                segments = rng.randint(1, 12)
                chunk_maker = zero_chunk
            elif kind < 0.50:
                segments = rng.randint(1, 4)
                chunk_maker = random_chunk
            elif kind < 0.75:
                segments = rng.randint(1, 4)

                def chunk_maker():
                    start = rng.randint(0, len(text_pool) - MIB)
                    return text_pool[start:start + MIB]
            else:
                segments = rng.randint(1, 6)
                chunk_maker = binary_chunk
            for _ in range(segments):
                chunk = chunk_maker()[:size - written]
                if not chunk:
                    break
                image.write(chunk)
                written += len(chunk)


class BrokenStream(object):
    """A stream (a download, say) whose source breaks after ``good``
    bytes, as a connection reset does."""

    def __init__(self, data, good):
        self._data = io.BytesIO(data)
        self._good = good

    def read(self, size=-1):
        if self._data.tell() >= self._good:
            raise IOError('connection reset by peer')
        return self._data.read(min(size, self._good - self._data.tell()))
