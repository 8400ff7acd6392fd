# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Where the tests find what is not in the package: their own fixtures, the
checkout's deploy/ files, and the man pages (the installed ones when the
tests run against an installation, so that the wheel is shown to ship them).
"""

from __future__ import absolute_import

import os
import os.path
import sys

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(TESTS_DIR, 'fixtures')
# A copy of tests/ run against an installation is told where the checkout
# is; a checkout's own tests/ is in it.
CHECKOUT = os.environ.get('EUSTORE_CHECKOUT') or os.path.dirname(TESTS_DIR)


def checkout_path(*parts):
    return os.path.join(CHECKOUT, *parts)


def man_dir():
    """The installed man pages beside this Python, else the checkout's."""
    installed = os.path.join(sys.prefix, 'share', 'man', 'man1')
    if os.path.isfile(os.path.join(installed, 'eustore-install-image.1')):
        return installed
    if os.environ.get('EUSTORE_TEST_INSTALLED'):
        raise RuntimeError('the man pages are not installed in {0}'.format(
            installed))
    return checkout_path('man')
