# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Exceptions raised by the bundler and the unbundler.

Every failure the caller can do something about is a ``BundleError``, a
``ValueError`` so code that only knows "bad input" still catches it.  The
subclasses say which input was bad, so the install command can word its
advice (fix the credentials, fetch the image again, ...) without parsing
messages.  Messages are one line: what was wrong, then what to do.
"""

from __future__ import absolute_import, division, print_function


class BundleError(ValueError):
    """Something about a bundle, or what goes into it, is wrong."""


class CredentialError(BundleError):
    """A certificate or private key is unreadable, malformed or mismatched."""


class ImageSourceError(BundleError):
    """The image cannot be read, or holds a different number of bytes than
    was declared, or is too large for an S3-backed bundle."""


class ManifestError(BundleError):
    """A manifest is malformed, or asked for before its bundle exists."""


class BundleVerificationError(BundleError):
    """A bundle's signature, a part's digest or the image digest does not
    match: the bundle was damaged or tampered with."""
