# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What must work on every Python the package claims (the matrix runs these,
marked ``smoke``, on each one found, against the installed package): each
command starts, answers --help and --version without a warning the user
cannot act on, and a local catalog lists.  One install into moto is marked
in tests/test_install.py.
"""

from __future__ import absolute_import

import re

import pytest

import eustore_plugin
from tests.support.catalogs import put_catalog
from tests.support.commands import COMMANDS


@pytest.mark.smoke
@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_command_starts_and_answers_help_and_version(cli, command):
    shown = cli(command, '--help')
    assert shown.returncode == 0, shown
    assert re.match(r'^usage: {0} '.format(command), shown.stdout), shown
    assert shown.stderr == ''
    version = cli(command, '--version')
    assert version.returncode == 0, version
    # requestbuilder prints the version on stdout or stderr by Python.
    text = version.stdout + version.stderr
    assert text.splitlines()[0] == 'eustore-plugin {0}'.format(
        eustore_plugin.__version__), version


@pytest.mark.smoke
def test_a_local_catalog_lists(cli, store_dir):
    put_catalog(store_dir, 'seed-catalog.json', 'catalog.json')
    result = cli('eustore-describe-images', '-U', str(store_dir))
    assert result.returncode == 0, result
    assert [line.split('\t')[0] for line in result.lines] == [
        'centos-x86_64-20120114', 'debian-x86_64-20120114']
    assert result.messages == []
