# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""The error types the commands report, and what they carry."""

from __future__ import absolute_import

from requestbuilder.exceptions import ClientError
import six


class EustoreError(ClientError):
    """
    Something the user is told in one line (the message says what was
    wrong and what to do); ``status_code`` is the HTTP status a server
    answered, when one did.  requestbuilder prints a ClientError's message
    without a traceback unless --debug is given.
    """

    def __init__(self, message, status_code=None):
        ClientError.__init__(self, message)
        self.status_code = status_code


class MessageError(ValueError):
    """
    Bad input from a document or a tool, as a ValueError whose str() is
    its one-line message (what is wrong, what to do), non-ASCII included
    on Python 2, where str() of an exception holding such text fails.
    """

    def __init__(self, message):
        if six.PY2 and isinstance(message, six.text_type):
            message = message.encode('utf-8')
        ValueError.__init__(self, message)


def status_of(err):
    """The HTTP status an exception carries (ours, requests'), or None."""
    for candidate in (getattr(err, 'status_code', None),
                      getattr(getattr(err, 'response', None), 'status_code',
                              None)):
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate
    return None
