# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
How many bytes a store can make the tools read, inflate or keep: every
bound on size in one place (docs/threat-model.md, "endless data").  Each
is held while the bytes come, never checked only at the end: a file whose
catalog gives its size is held to that size, and one whose size nobody
gives (a virt-builder entry with no ``compressed_size``, an eustore entry
with a digest alone, an endless body) to the most its kind may have.
"""

from __future__ import absolute_import

import collections

MIB = 1024 * 1024
GIB = 1024 * MIB

# The most an S3-backed image holds (EC2 refuses larger ones), and so the
# largest raw disk an install can make.
MAX_IMAGE_SIZE = 10 * GIB


class SizeLimit(collections.namedtuple('SizeLimit', 'size what')):
    """At most ``size`` bytes for a ``what`` (a noun for messages)."""
    __slots__ = ()


# A disk image file as stored: a raw disk, or a qcow2 (its tables on top
# of a full 10 GiB disk) or an xz (its block headers on top of one that
# does not compress).
DISK_FILE = SizeLimit(MAX_IMAGE_SIZE + 256 * MIB, 'disk image file')
# A tar.gz, on the wire and once inflated: its disk image (10 GiB at most),
# kernel, ramdisk and anything else beside them, and the headers of all.
TARBALL = SizeLimit(MAX_IMAGE_SIZE + GIB, 'tarball')
# A catalog, index or products file: thousands of entries fit in a few MiB.
# Counted on the wire and after any Content-Encoding.
DOCUMENT = SizeLimit(32 * MIB, 'catalog')
SIGNATURE = SizeLimit(256 * 1024, 'signature')
# The headers of one tar member, its extensions (a long name, a pax
# header, a sparse map) included, which tarfile reads whole into memory:
# names and attributes, never megabytes.
TAR_HEADER = SizeLimit(MIB, "member's headers")
