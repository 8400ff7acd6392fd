# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
S3-backed image bundles (the format of euca-bundle-image and
ec2-bundle-image; REFERENCE section 4), made and read without external
tools.

- ``BundleWriter``: image stream -> encrypted parts + signed manifest;
  ``COMPRESSION_LEVELS`` are the names its ``compression`` takes (the
  choices of a ``--compression-level`` option), ``DEFAULT_COMPRESSION``
  the one it uses unless told.
- ``BundleReader``: manifest + parts -> verified image stream.
- ``BundleError`` (a ValueError) and its subclasses for everything that can
  go wrong with the inputs.
"""

from __future__ import absolute_import, division, print_function

from eustore_plugin.bundle.errors import (BundleError,
                                          BundleVerificationError,
                                          CredentialError, ImageSourceError,
                                          ManifestError)
from eustore_plugin.bundle.manifest import Manifest, ManifestPart
from eustore_plugin.bundle.pgzip import (COMPRESSION_LEVELS,
                                         DEFAULT_COMPRESSION)
from eustore_plugin.bundle.reader import BundleReader
from eustore_plugin.bundle.writer import (DEFAULT_PART_SIZE, MAX_IMAGE_SIZE,
                                          BundlePart, BundleWriter)

__all__ = [
    'BundleError', 'BundlePart', 'BundleReader', 'BundleVerificationError',
    'BundleWriter', 'COMPRESSION_LEVELS', 'CredentialError',
    'DEFAULT_COMPRESSION', 'DEFAULT_PART_SIZE', 'ImageSourceError',
    'MAX_IMAGE_SIZE', 'Manifest', 'ManifestError', 'ManifestPart',
]
