# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Printing for humans and pipes, the same on Python 2 and 3."""

from __future__ import absolute_import, print_function

import os.path
import sys

import six


def _write(stream, text):
    if six.PY2 and isinstance(text, six.text_type):
        # Python 2 cannot print non-ASCII text to a pipe; catalogs have it.
        text = text.encode(getattr(stream, 'encoding', None) or 'utf-8',
                           'replace')
    stream.write(text)
    stream.write('\n')


def emit(line):
    """A line of the command's result, on stdout."""
    _write(sys.stdout, line)


def warn(message):
    """A one-line warning on stderr, prefixed like euca2ools' errors."""
    _write(sys.stderr, u'{0}: warning: {1}'.format(
        os.path.basename(sys.argv[0]), message))
