# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
"eustore-accept-unsigned": a store the user has decided to use unsigned is
listed without the unsigned-catalog warning, per region or in [global];
"eustore-require-signature" still wins.
"""

from __future__ import absolute_import

import textwrap

import pytest

from tests.support.catalogs import put_catalog
from tests.support.commands import UNSIGNED_WARNING_END
from tests.support.http import StoreServer

DESCRIBE = 'eustore-describe-images'


@pytest.fixture
def unsigned_store(store_dir):
    put_catalog(store_dir, 'seed-catalog.json')
    server = StoreServer(str(store_dir)).start()
    yield server
    server.stop()


def config_env(tmpdir, text):
    config = tmpdir.join('accept.ini')
    config.write(textwrap.dedent(text))
    return {'EUCA_CONFIG_PATH': str(config)}


def test_without_the_option_the_warning_is_given(cli, unsigned_store):
    result = cli(DESCRIBE, '-U', unsigned_store.url)
    assert result.returncode == 0, result
    assert result.stderr.strip().endswith(UNSIGNED_WARNING_END)


@pytest.mark.parametrize('text', [
    '[global]\neustore-accept-unsigned = yes\n[region lab]\n'
    'eustore-url = {0}\n',
    '[region lab]\neustore-accept-unsigned = yes\neustore-url = {0}\n'],
    ids=['global', 'region'])
def test_an_accepted_store_is_listed_quietly(cli, unsigned_store, tmpdir,
                                             text):
    env = config_env(tmpdir, text.format(unsigned_store.url))
    result = cli(DESCRIBE, '--region', 'lab', env=env)
    assert result.returncode == 0, result
    assert result.lines
    assert result.stderr == ''


def test_another_regions_acceptance_does_not_count(cli, unsigned_store,
                                                   tmpdir):
    env = config_env(tmpdir, '''
        [region lab]
        eustore-url = {0}
        [region other]
        eustore-accept-unsigned = yes
        '''.format(unsigned_store.url))
    result = cli(DESCRIBE, '--region', 'lab', env=env)
    assert result.returncode == 0, result
    assert result.stderr.strip().endswith(UNSIGNED_WARNING_END)


def test_require_signature_still_wins(cli, unsigned_store, tmpdir):
    env = config_env(tmpdir, '''
        [global]
        eustore-accept-unsigned = yes
        eustore-require-signature = yes
        ''')
    result = cli(DESCRIBE, '-U', unsigned_store.url, env=env)
    assert result.returncode == 1
    assert result.stdout == ''
    assert 'requires signed catalogs' in result.stderr
    assert len(result.stderr.splitlines()) == 1
