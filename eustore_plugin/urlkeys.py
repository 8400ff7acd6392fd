# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Object keys in URLs, written the one way AWS specifies for S3 paths (and
SigV4 signs them): every byte of the key's UTF-8 percent-encoded with
upper-case hex digits, but the unreserved ``A-Z a-z 0-9 - . _ ~`` and the
``/`` between path segments.  So written, a key means the same to every
server, cache and client: ``#`` and ``?`` no longer end the path, ``+`` is
no space and ``%`` no escape.  Every URL the tools build from a key (S3
requests, a catalog's tarball urls) goes through :func:`quote_key`, and
every key read from a URL is decoded once, by :func:`unquote_path`.
"""

from __future__ import absolute_import

import six
import six.moves.urllib_parse as urlparse

# What is never encoded: RFC 3986's unreserved characters.
_UNRESERVED = '-._~'


def _utf8(text):
    return text if isinstance(text, six.binary_type) else \
        six.text_type(text).encode('utf-8')


def quote_key(key, safe='/'):
    """``key`` (text or UTF-8 bytes) as a URL path holds it; ``safe``:
    what else is left as it is (``''`` for a query value)."""
    # Python 2's quote takes only bytes, and both leave letters, digits
    # and "_.-" alone but differ on "~": said here, not left to them.
    quoted = urlparse.quote(_utf8(key), safe=safe + _UNRESERVED)
    return quoted.decode('ascii') if isinstance(quoted, bytes) else quoted


def unquote_path(path):
    """A URL path (or one segment, a query value) decoded once, as text:
    its percent-escapes are UTF-8 bytes (undecodable ones replaced)."""
    return urlparse.unquote_to_bytes(_utf8(path)).decode('utf-8', 'replace')


def aws_query(pairs):
    """Query parameters (name, value) written AWS's way, sorted: what
    SigV4 signs, and so what S3 requests send (a space is %20, not +)."""
    return '&'.join(sorted(quote_key(name, safe='') + '=' +
                           quote_key(value, safe='') for name, value in pairs))


def s3_path(bucket, key=None, params=None):
    """The path (and query, from the dict ``params``) of a bucket, or of
    an object in it, after S3's endpoint.  The bucket is encoded too (a
    valid name needs nothing; one that is not is still sent as signed)."""
    path = quote_key(bucket, safe='')
    if key is not None:
        path += u'/' + quote_key(key)
    return path + '?' + aws_query(params.items()) if params else path


def requote_path(path):
    """A URL path as sent, written AWS's way: decoded once, and encoded
    again (what SigV4 signs for S3, however the path was sent)."""
    return quote_key(urlparse.unquote_to_bytes(_utf8(path)))
