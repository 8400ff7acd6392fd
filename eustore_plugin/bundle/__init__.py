# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
S3-backed image bundles (the format of euca-bundle-image and
ec2-bundle-image; docs/formats.md, "The EC2 S3-backed bundle"), made without
external tools.

- ``BundleWriter``: image stream -> encrypted parts + signed manifest;
  ``COMPRESSION_LEVELS`` are the names its ``compression`` takes (the
  choices of a ``--compression-level`` option), ``DEFAULT_COMPRESSION``
  the one it uses unless told.
- ``Manifest`` (manifest.py's ``parse_manifest``): a manifest read back, to
  check what was uploaded.
- ``BundleError`` (a ValueError) and its subclasses for everything that can
  go wrong with the inputs.

The tests read whole bundles back with tests/support/bundlereader.py.
"""

from __future__ import absolute_import, division, print_function

from eustore_plugin.bundle.errors import (BundleError, BundleVerificationError,
                                          CredentialError, ImageSourceError,
                                          ManifestError)
from eustore_plugin.bundle.manifest import Manifest, ManifestPart
from eustore_plugin.bundle.pgzip import COMPRESSION_LEVELS, DEFAULT_COMPRESSION
from eustore_plugin.bundle.writer import (DEFAULT_PART_SIZE, MAX_IMAGE_SIZE,
                                          BundlePart, BundleWriter)

__all__ = [
    'BundleError', 'BundlePart', 'BundleVerificationError', 'BundleWriter',
    'COMPRESSION_LEVELS', 'CredentialError', 'DEFAULT_COMPRESSION',
    'DEFAULT_PART_SIZE', 'ImageSourceError',
    'MAX_IMAGE_SIZE', 'Manifest', 'ManifestError', 'ManifestPart',
]
