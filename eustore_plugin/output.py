# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Printing for humans and pipes, the same on Python 2 and 3.

Names, descriptions, reason phrases and file names come from stores,
servers and tarballs: attacker input.  Nothing reaches the terminal as it
came: control characters (escape sequences that clear the screen, set the
window title or move the cursor to overwrite another line), bidirectional
overrides and unpaired surrogates are replaced by visible escapes.  Every
line printed goes through :func:`clean`; tab-separated output escapes tabs
and newlines in its cells (:func:`tsv_line`), so one cell cannot become two.
"""

from __future__ import absolute_import, print_function

import errno
import os.path
import re
import sys

import six

# C0 and C1 controls, DEL, the bidirectional embeddings, overrides and
# isolates, line and paragraph separators, and unpaired surrogates.
_UNSAFE_RE = re.compile(u'[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e'
                        u'\u2066-\u2069\ud800-\udfff]')
_TSV_ESCAPES = {u'\\': u'\\\\', u'\t': u'\\t', u'\n': u'\\n', u'\r': u'\\r'}


def _text(value):
    if isinstance(value, six.binary_type):
        return value.decode('utf-8', 'replace')
    return six.text_type(value)


def _escape(match):
    code = ord(match.group(0))
    return u'\\x{0:02x}'.format(code) if code < 0x100 else \
        u'\\u{0:04x}'.format(code)


def clean(value, keep_tabs=False):
    """``value`` as text that is safe to print on one terminal line."""
    text = _text(value)
    if keep_tabs:
        return u'\t'.join(_UNSAFE_RE.sub(_escape, part)
                          for part in text.split(u'\t'))
    return _UNSAFE_RE.sub(_escape, text)


def tsv_cell(value):
    """A cell of tab-separated output: its tabs and newlines escaped."""
    text = _text(value if value is not None else u'')
    text = re.sub(u'[\\\\\t\n\r]', lambda m: _TSV_ESCAPES[m.group(0)], text)
    return clean(text)


def tsv_line(cells):
    return u'\t'.join(tsv_cell(cell) for cell in cells)


def _write(stream, text):
    if six.PY2 and isinstance(text, six.text_type):
        # Python 2 cannot print non-ASCII text to a pipe; catalogs have it.
        text = text.encode(getattr(stream, 'encoding', None) or 'utf-8',
                           'replace')
    stream.write(text)
    stream.write('\n')


def emit(line, tabs=False):
    """A line of the command's result, on stdout (``tabs``: TSV, kept)."""
    _write(sys.stdout, clean(line, keep_tabs=tabs))


def emit_raw(text):
    """Machine output (JSON) that is already plain, escaped text."""
    _write(sys.stdout, text)


def prog_name():
    return os.path.basename(sys.argv[0])


def warn(message):
    """A one-line warning on stderr, prefixed like euca2ools' errors."""
    _write(sys.stderr, u'{0}: warning: {1}'.format(prog_name(),
                                                   clean(message)))


def error_line(message):
    """A one-line error on stderr, as requestbuilder prints them."""
    _write(sys.stderr, u'{0}: error: {1}'.format(prog_name(),
                                                 clean(message)))


def is_broken_pipe(err):
    """Whether ``err`` is the reader of our output having gone away."""
    return getattr(err, 'errno', None) == errno.EPIPE
