# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Object keys that URLs and signatures treat specially, each in a tarball's
place (``images/<digest>/<name>``): every character AWS's URI encoding
escapes that a path may hold as it is (so a signer may wrongly keep), the
ones that end or change a path (``#``, ``?``, ``%``, space), ``~`` (which
it must not escape), text that is not ASCII, and a long key.
"""

from __future__ import absolute_import

import pytest

PREFIX = u'images/0123456789abcdef/'

# The sub-delimiters and the others RFC 3986 lets a path hold unescaped.
KEPT_IN_PATHS = u"+()!*',;=:@$&"

_KEYS = [(u'char-' + character, PREFIX + u'a{0}b.tgz'.format(character))
         for character in KEPT_IN_PATHS] + [
    (u'space', PREFIX + u'fedora 20.tgz'),
    (u'percent', PREFIX + u'100%25 fedora%.tgz'),
    (u'hash', PREFIX + u'fedora-20#1.tgz'),
    (u'question', PREFIX + u'fedora-20?.tgz'),
    (u'tilde', PREFIX + u'~fedora~20.tgz'),
    (u'non-ascii', PREFIX + u'd\xe9bian \u2603 \U0001f427.tgz'),
    (u'long', PREFIX + u'-'.join([u'fedora'] * 120) + u'.tgz'),
]

KEYS = [key for _, key in _KEYS]
# For pytest.mark.parametrize.
KEY_PARAMS = [pytest.param(key, id=name) for name, key in _KEYS]
