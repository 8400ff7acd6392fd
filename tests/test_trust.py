# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What a store's users trust: signed catalogs checked against their keys, the
policy for unsigned ones, and the cached catalog (conditional GETs, offline
use), against a real HTTP store on loopback.
"""

from __future__ import absolute_import

import base64
import glob
import json
import os.path
import textwrap

import pytest

from eustore_plugin.store.trust import went_back
from tests.support.catalogs import put_catalog
from tests.support.gpg import missing_tools
from tests.support.http import StoreServer

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=(
    'gpg and gpgv are needed to sign and check catalogs: run scripts/setup '
    '(it installs the gnupg and gpgv packages)'))

DESCRIBE = 'eustore-describe-images'
INSTALL = 'eustore-install-image'
SEED_NAMES = ['centos-x86_64-20120114', 'debian-x86_64-20120114']


@pytest.fixture
def signed_store(store_dir, signing_key):
    put_catalog(store_dir, 'seed-catalog.json')
    sign(store_dir, signing_key)
    server = StoreServer(str(store_dir)).start()
    yield server
    server.stop()


def sign(store_dir, key):
    catalog = store_dir.join('catalog')
    store_dir.join('catalog.asc').write_binary(key.sign(catalog.read_binary()))


def names(result):
    return [line.split('\t')[0] for line in result.lines]


def cache_files(user_env):
    """The catalog cache's entries in the user's home."""
    return glob.glob(os.path.join(user_env['HOME'], '.cache', 'eustore',
                                  '*.json'))


def edit_cached(user_env, edit):
    """Change the one cached catalog's entry on disk: ``edit(entry)``."""
    cached, = cache_files(user_env)
    with open(cached) as source:
        entry = json.load(source)
    edit(entry)
    with open(cached, 'w') as out:
        json.dump(entry, out)


def config_file(tmpdir, text):
    config = tmpdir.join('euca2ools.ini')
    config.write(textwrap.dedent(text))
    return {'EUCA_CONFIG_PATH': str(config)}


def test_trusted_keys_from_the_configuration(cli, signed_store, signing_key,
                                             stranger_key, tmpdir):
    keys = tmpdir.mkdir('keys')
    for key in (stranger_key, signing_key):
        keys.join(os.path.basename(key.public_file)).write_binary(
            open(key.public_file, 'rb').read())
    env = config_file(tmpdir, '''
        [global]
        eustore-trusted-keys = {0}/*.asc
        '''.format(str(keys)))
    result = cli(DESCRIBE, '-U', signed_store.url, env=env)
    assert result.returncode == 0, result
    assert names(result) == SEED_NAMES
    assert result.stderr == ''


def test_a_catalog_signed_by_a_stranger_is_refused(cli, store_dir,
                                                   stranger_key, signing_key):
    put_catalog(store_dir, 'seed-catalog.json')
    sign(store_dir, stranger_key)
    server = StoreServer(str(store_dir)).start()
    try:
        result = cli(DESCRIBE, '-U', server.url, '--trusted-key',
                     signing_key.public_file)
    finally:
        server.stop()
    assert result.returncode == 1
    assert result.stdout == ''
    assert 'refusing the catalog at {0}catalog'.format(server.url) in \
        result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_trusting_a_key_requires_a_signature(cli, store, store_dir,
                                             signing_key, tmpdir):
    put_catalog(store_dir, 'seed-catalog.json')
    result = cli(DESCRIBE, '-U', store.url, '--trusted-key',
                 signing_key.public_file)
    assert result.returncode == 1
    assert 'is not signed (there is no {0}catalog.asc)'.format(store.url) \
        in result.stderr
    # Unless the configuration says signatures are optional.
    env = config_file(tmpdir, '''
        [global]
        eustore-require-signature = no
        ''')
    result = cli(DESCRIBE, '-U', store.url, '--trusted-key',
                 signing_key.public_file, env=env)
    assert result.returncode == 0, result
    assert names(result) == SEED_NAMES
    assert 'is not signed, so the images it lists cannot be verified' in \
        result.stderr


def test_a_signature_without_trusted_keys(cli, signed_store, tmpdir):
    result = cli(DESCRIBE, '-U', signed_store.url)
    assert result.returncode == 0
    assert names(result) == SEED_NAMES
    assert result.stderr.splitlines() == [
        '{0}: warning: the catalog at {1}catalog is signed, but you trust no '
        'key to check it with (give --trusted-key FILE or set '
        '"eustore-trusted-keys")'.format(DESCRIBE, signed_store.url)]
    env = config_file(tmpdir, '''
        [region lab]
        eustore-require-signature = yes
        ''')
    result = cli(DESCRIBE, '-U', signed_store.url, '--region', 'lab',
                 env=env)
    assert result.returncode == 1
    assert 'names no key to trust' in result.stderr


def test_the_catalog_is_fetched_again_only_when_it_changed(
        cli, signed_store, store_dir, signing_key):
    first = cli(DESCRIBE, '-U', signed_store.url, '--trusted-key',
                signing_key.public_file)
    assert names(first) == SEED_NAMES
    del signed_store.requests[:]
    second = cli(DESCRIBE, '-U', signed_store.url, '--trusted-key',
                 signing_key.public_file)
    assert second.lines == first.lines
    catalog_get = [dict((name.lower(), value) for name, value in
                        headers.items())
                   for _, path, headers in signed_store.requests
                   if path == '/catalog']
    assert len(catalog_get) == 1
    assert catalog_get[0].get('if-none-match', '').startswith('"')

    # Changed and re-signed: the new catalog is read.
    data = json.loads(store_dir.join('catalog').read())
    data['images'].pop()
    store_dir.join('catalog').write(json.dumps(data))
    sign(store_dir, signing_key)
    third = cli(DESCRIBE, '-U', signed_store.url, '--trusted-key',
                signing_key.public_file)
    assert names(third) == SEED_NAMES[:1]


def test_a_catalog_replaced_within_the_second_is_read_again(
        cli, operator, store_url, signing_key, user_env):
    # moto's S3, like some caches, answers 304 to an If-Modified-Since that
    # holds even when If-None-Match does not; a Last-Modified has one-second
    # resolution.  The copy's date set past the next catalog's stands for
    # a catalog replaced within the second it was fetched in.
    trust = ['--trusted-key', signing_key.public_file]
    assert operator.publish('fedora').returncode == 0
    first = cli(DESCRIBE, '-U', store_url, *trust)
    assert names(first) == ['fedora-demo'], first

    def date_past_the_next(entry):
        assert entry['etag'] and entry['last_modified']
        entry['last_modified'] = 'Fri, 01 Jan 2100 00:00:00 GMT'
    edit_cached(user_env, date_past_the_next)
    assert operator.publish('centos').returncode == 0
    second = cli(DESCRIBE, '-U', store_url, *trust)
    assert sorted(names(second)) == ['centos-demo', 'fedora-demo'], second


def test_an_unreachable_store_lists_from_the_cache(cli, signed_store,
                                                   signing_key, user_env):
    first = cli(DESCRIBE, '-U', signed_store.url, '--trusted-key',
                signing_key.public_file)
    assert first.returncode == 0, first
    signed_store.stop()
    offline = cli(DESCRIBE, '-U', signed_store.url, '--trusted-key',
                  signing_key.public_file)
    assert offline.returncode == 0, offline
    assert offline.lines == first.lines
    notice = offline.stderr.splitlines()
    assert len(notice) == 1
    assert 'cannot reach the image store at {0}catalog'.format(
        signed_store.url) in notice[0]
    assert 'which may be out of date' in notice[0]

    # The copy is checked again each time: altered, it is refused.
    def altered(entry):
        body = base64.b64decode(entry['body']).replace(b'CentOS', b'KentOS')
        entry['body'] = base64.b64encode(body).decode('ascii')
    edit_cached(user_env, altered)
    refused = cli(DESCRIBE, '-U', signed_store.url, '--trusted-key',
                  signing_key.public_file)
    assert refused.returncode == 1
    assert 'bad signature' in refused.stderr


def test_a_refused_catalog_is_not_cached(cli, signed_store, store_dir,
                                         signing_key, user_env):
    store_dir.join('catalog').write(
        store_dir.join('catalog').read().replace('CentOS', 'KentOS'))
    result = cli(DESCRIBE, '-U', signed_store.url, '--trusted-key',
                 signing_key.public_file)
    assert result.returncode == 1
    assert not cache_files(user_env)


def test_install_needs_a_sha256_in_a_signed_catalog(cli, signed_store,
                                                    signing_key):
    # The seed's catalog has no sha256: signed, it vouches for nothing the
    # tarball could be checked against.  This fails before the cloud (a
    # closed port here) is spoken to.
    env = {'EC2_URL': 'http://127.0.0.1:1/', 'S3_URL': 'http://127.0.0.1:1/',
           'AWS_ACCESS_KEY_ID': 'AKIDEXAMPLE',
           'AWS_SECRET_ACCESS_KEY': 'secret', 'EC2_CERT': 'cert.pem',
           'EC2_PRIVATE_KEY': 'pk.pem', 'EUCALYPTUS_CERT': 'cloud.pem',
           'EC2_USER_ID': '123456789012'}
    result = cli(INSTALL, '-U', signed_store.url, '--trusted-key',
                 signing_key.public_file, '-i', SEED_NAMES[0], '-b', 'bucket',
                 env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        '{0}: error: the signed catalog gives no sha256 for image "{1}", so '
        'its tarball cannot be verified; ask the store\'s operator to '
        'publish it again'.format(INSTALL, SEED_NAMES[0])]


MARCH = 'Fri, 15 Mar 2024 12:00:00 +0000'
JANUARY = 'Mon, 01 Jan 2024 12:00:00 +0000'


@pytest.mark.parametrize('now, before, back', [
    ({'serial': 3}, {'serial': 3}, None),
    ({'serial': 4}, {'serial': 3}, None),
    ({'serial': 2}, {'serial': 3}, ('serial 2', 'serial 3')),
    ({'serial': None}, {'serial': 3}, ('serial none', 'serial 3')),
    ({'serial': 1}, {'serial': None}, None),
    ({'serial': 1}, {}, None),
    ({'updated': MARCH}, {'updated': JANUARY}, None),
    ({'updated': JANUARY}, {'updated': MARCH},
     ('updated ' + JANUARY, 'updated ' + MARCH)),
    ({'updated': None}, {'updated': MARCH},
     ('updated never', 'updated ' + MARCH)),
    ({'updated': 'junk'}, {'updated': 'junk'}, None),
    ({'revisions': {'[a] x86_64': 2, '[b]': 1}},
     {'revisions': {'[a] x86_64': 2, '[b]': 1}}, None),
    # A template gone, or new, says nothing; one gone back does.
    ({'revisions': {'[c]': 1}}, {'revisions': {'[a] x86_64': 2}}, None),
    ({'revisions': {'[a] x86_64': 3, '[b]': 0}},
     {'revisions': {'[a] x86_64': 2, '[b]': 1}},
     ('[b] at revision 0', 'revision 1')),
])
def test_what_went_back(now, before, back):
    assert went_back(now, before) == back
