# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Numbers read from what stores and servers send, which may be anything."""

from __future__ import absolute_import

import calendar
import re
import time

import six

# No size the tools deal with comes near this (images stop at 10 GiB); a
# bigger number is a hostile or broken document, not a size.
MAX_COUNT = 2 ** 53
_DIGITS_RE = re.compile(r'^[0-9]{1,16}$')


def as_count(value):
    """
    A non-negative integer from an int or a string of digits, else None:
    never a bool, a float (1e999 is not a size), a negative number or a
    number of absurd size.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, six.integer_types):
        number = value
    elif isinstance(value, six.string_types):
        # ASCII digits only: int() would also take other scripts' digits.
        if not _DIGITS_RE.match(value.strip()):
            return None
        number = int(value.strip())
    else:
        return None
    return number if 0 <= number <= MAX_COUNT else None


def parse_utc(text):
    """A "YYYY-MM-DDThh:mm:ssZ" timestamp as seconds since 1970, or None."""
    if not isinstance(text, six.string_types):
        return None
    try:
        return calendar.timegm(time.strptime(text.strip(),
                                             '%Y-%m-%dT%H:%M:%SZ'))
    except (ValueError, OverflowError):
        return None


def utc_text(timestamp):
    """Seconds since 1970 as "YYYY-MM-DDThh:mm:ssZ"."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(timestamp))
