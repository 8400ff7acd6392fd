# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""The catalogs kept in tests/fixtures, and putting them into a store."""

from __future__ import absolute_import

import os.path
import shutil

from tests.support.paths import FIXTURES


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def put_catalog(store_dir, fixture, name='catalog'):
    """Copy the fixture catalog ``fixture`` into a store directory."""
    shutil.copy(fixture_path(fixture), os.path.join(str(store_dir), name))
