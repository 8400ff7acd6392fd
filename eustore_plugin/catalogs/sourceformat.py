# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What the readers of other image sources' documents share, with no I/O.

Besides its own stores, eustore can read the public image lists of
simplestreams mirrors (simplestreams.py: Ubuntu's cloud images, CirrOS)
and of virt-builder repositories (virtbuilder.py: libguestfs).  Those
documents come from whoever runs the source, or from whoever sits between
it and the user, so nothing in them is believed before it is checked:

- a file's path must lead to a URL under the directory the format says it
  is relative to.  A path that is absolute, names a scheme or climbs out
  with ``..`` (plain or percent-encoded) could point a download, and the
  digest that comes with it, anywhere: such an entry is skipped, not
  "fixed";
- digests are hex of the length of their algorithm, or ignored;
- warnings never show a value's ``repr()``: a value can be a list nested a
  million deep, and printing it would recurse as deep.

The architecture names of the three families differ (Debian's ``amd64``,
the kernel's ``aarch64``, EC2's ``x86_64`` and ``arm64``);
:func:`ec2_architecture` says which EC2 name an image registers under.
"""

from __future__ import absolute_import

import re

import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.errors import MessageError

# Every name these sources use for the three architectures EC2 knows; any
# other name (armhf, ppc64el, s390x, riscv64) passes through, lowercased.
_EC2_ARCHITECTURES = {
    'x86_64': 'x86_64', 'amd64': 'x86_64',
    'arm64': 'arm64', 'aarch64': 'arm64',
    'i386': 'i386', 'i486': 'i386', 'i586': 'i386', 'i686': 'i386',
    'x86': 'i386',
}
# The largest size taken seriously: a signed 64-bit byte count.
MAX_SIZE = 2 ** 63 - 1
_HEX_RE = re.compile(r'^[0-9a-fA-F]+\Z')
_CONTROL_RE = re.compile(u'[\x00-\x1f\x7f]')
_DIGIT_RUNS_RE = re.compile(r'[0-9]+|[^0-9]+')
_SHOWN_CHARS = 60


class SourceFormatError(MessageError):
    """A document is not of the format it was read as; str() is a
    one-line message saying what is wrong and what to do."""


class UnsafePathError(ValueError):
    """A document's path would not stay under its directory; str() says
    why, to be put in a warning."""


def ec2_architecture(arch):
    """
    The EC2 name of the architecture ``arch``: amd64 and x86_64 are
    x86_64, arm64 and aarch64 are arm64, i386 to i686 and x86 are i386;
    any other name comes back lowercased.  None for no name (or a value
    that is not text).
    """
    if not isinstance(arch, six.string_types):
        return None
    word = arch.strip().lower()
    if not word:
        return None
    return _EC2_ARCHITECTURES.get(word, word)


def describe(value):
    """``value`` in a few words for a warning, without repr() of
    containers (which recurses as deep as they nest)."""
    if value is None:
        return u'null'
    if isinstance(value, bool):
        return u'true' if value else u'false'
    if isinstance(value, six.string_types):
        if isinstance(value, six.binary_type):
            value = value.decode('utf-8', 'replace')
        if len(value) > _SHOWN_CHARS:
            value = value[:_SHOWN_CHARS] + u'...'
        return u'"{0}"'.format(value)
    if isinstance(value, six.integer_types) and abs(value) > MAX_SIZE:
        # Python 3.11 refuses to show ints of more than 4300 digits.
        return u'a very large number'
    if isinstance(value, six.integer_types + (float,)):
        return u'the number {0!r}'.format(value)
    if isinstance(value, dict):
        return u'an object'
    if isinstance(value, (list, tuple)):
        return u'a list'
    return u'a {0}'.format(type(value).__name__)


def hex_digest(value, length):
    """``value`` as a lowercase hex digest of ``length`` digits, or None
    when it is not one."""
    if not isinstance(value, six.string_types):
        return None
    value = value.strip()
    if len(value) != length or not _HEX_RE.match(value):
        return None
    return value.lower()


def version_key(version):
    """
    A sort key that orders version strings naturally: runs of digits by
    their value, so "20240101.10" comes after "20240101.9" and
    "20240101.1" after "20240101".  Digit runs are compared by length and
    then digit by digit, never turned into ints: Python 3.11 refuses to
    convert more than 4300 digits, and a hostile document can have more.
    """
    if not isinstance(version, six.string_types):
        version = u''
    runs = []
    for run in _DIGIT_RUNS_RE.findall(version):
        if run[0] in '0123456789':
            digits = run.lstrip('0') or '0'
            runs.append((0, len(digits), digits))
        else:
            runs.append((1, 0, run))
    # The text itself breaks ties such as "01" and "1".
    return tuple(runs), version


def directory_url(url):
    """The URL of the directory holding ``url``'s document: everything up
    to the last "/" of its path, without query or fragment ("" for no
    URL: paths then stay relative)."""
    if not url:
        return u''
    parts = urlparse.urlsplit(url)
    path = parts.path
    path = path[:path.rfind('/') + 1] if '/' in path else ''
    if parts.netloc and not path.startswith('/'):
        path = '/' + path
    return urlparse.urlunsplit((parts.scheme, parts.netloc, path, '', ''))


def as_directory(url):
    """``url`` as a directory's URL, with one final "/" (a mirror named
    without it is still the directory)."""
    parts = urlparse.urlsplit(url)
    path = parts.path if parts.path.endswith('/') else parts.path + '/'
    return urlparse.urlunsplit((parts.scheme, parts.netloc, path, '', ''))


def resolve_under(directory, path):
    """
    The absolute URL of the relative ``path`` in ``directory`` (a URL
    ending in "/"), or :class:`UnsafePathError` saying why the path would
    not stay under it.
    """
    if path is None:
        raise UnsafePathError(u'is missing')
    if not isinstance(path, six.string_types):
        raise UnsafePathError(u'is {0}, not text'.format(describe(path)))
    if not path.strip():
        raise UnsafePathError(u'is empty')
    if _CONTROL_RE.search(path):
        raise UnsafePathError(u'holds control characters')
    if not six.PY2:
        try:
            path.encode('utf-8')
        except UnicodeEncodeError:
            raise UnsafePathError(u'is not valid Unicode (it holds a lone '
                                  u'surrogate)')
    if path.startswith('/'):
        raise UnsafePathError(u'is absolute')
    # RFC 3986 4.2: a relative path's first segment has no colon; with
    # one, "http:", "file:" or "c:" is taken for a scheme.
    if ':' in path.split('/', 1)[0]:
        raise UnsafePathError(u'names a URL scheme')
    unquoted = urlparse.unquote(path)
    if '\\' in unquoted:
        raise UnsafePathError(u'holds a backslash, which some URL parsers '
                              u'take for "/"')
    if '..' in unquoted.split('/'):
        raise UnsafePathError(u'climbs out with ".."')
    url = urlparse.urljoin(directory, path)
    if not url.startswith(directory):
        raise UnsafePathError(u'resolves outside {0}'.format(directory))
    return url
