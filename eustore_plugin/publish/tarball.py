# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A tarball about to be published, read once from the operator's disk: its
members (for the layout rules), size and digests (for the catalog).
"""

from __future__ import absolute_import

import collections
import io
import tarfile

from eustore_plugin.images.inflate import GzipDataError, TarStream
from eustore_plugin.images.layout import LayoutError
from eustore_plugin.store.download import CountingReader, Hashes


class TarballFacts(collections.namedtuple('TarballFacts',
                                          'path size sha256 md5 members')):
    """What one pass over a local tarball learnt: its size, digests and
    members (for the layout rules)."""
    __slots__ = ()


def inspect_tarball(path):
    """
    Read a local tar.gz once: its member list (for the layout rules) and its
    size, SHA-256 and MD5 (for the catalog).  Raises LayoutError when it is
    not a tar.gz.
    """
    try:
        source = io.open(path, 'rb')
    except (IOError, OSError) as err:
        raise LayoutError('cannot read {0} ({1})'.format(
            path, err.strerror or err))
    with source:
        reader = CountingReader(source, Hashes())
        try:
            with TarStream(reader) as tar:
                members = list(tar)
        except (tarfile.TarError, GzipDataError, IOError, EOFError) as err:
            raise LayoutError('{0} is not a readable tar.gz ({1}); an image '
                              'store holds gzipped tarballs'.format(path, err))
        for _ in iter(lambda: reader.read(1 << 20), b''):
            pass  # what is left after the archive's end: padding, trailer
    return TarballFacts(path, reader.size, reader.hashes.sha256.hexdigest(),
                        reader.hashes.md5.hexdigest(), members)
