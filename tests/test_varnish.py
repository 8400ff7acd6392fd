# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The store's Varnish configuration (deploy/varnish/eustore.vcl, unchanged) in
front of a real store: varnishd on loopback, caching a public bucket of
moto's S3 that holds the demo store, with a recording proxy between them to
count what reaches the bucket.  The commands read the store through the
cache as users do.

The bucket is on ``public_cloud``, the moto that checks no signatures (see
tests/conftest.py); the objects are uploaded public-read all the same, as a
real store's are.
"""

from __future__ import absolute_import

import json
import os
import os.path
import re

import pytest
import requests
import six.moves.urllib_parse as urlparse

from eustore_plugin.store.download import download
from tests.support.moto import REGION, CloudProxy, direct_cloud
from tests.support.paths import checkout_path
from tests.support.varnish import VarnishCache, compile_vcl, find_varnishd

pytestmark = pytest.mark.skipif(
    not find_varnishd(), reason='varnishd not found (Debian package '
    '"varnish", which scripts/setup installs; or set VARNISHD), so the '
    "store's cache configuration cannot be tested")

DESCRIBE = 'eustore-describe-images'
INSTALL = 'eustore-install-image'
BUCKET = 'eustore-cache'
SITE_EXAMPLE = checkout_path('deploy', 'varnish',
                             'eustore-site.vcl.example')
DAY = 24 * 3600


@pytest.fixture(scope='module')
def demo_store(demo_store_dir):
    """The demo store's directory, and its catalog's images by os."""
    with open(os.path.join(demo_store_dir, 'catalog')) as catalog:
        images = dict((image['os'], image)
                      for image in json.load(catalog)['images'])
    return demo_store_dir, images


@pytest.fixture(scope='module')
def s3(public_cloud, demo_store):
    """A signed client of the store's cloud, the demo store uploaded."""
    client = direct_cloud(public_cloud)
    client.create_bucket(BUCKET)
    directory = demo_store[0]
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            key = os.path.relpath(path, directory).replace(os.sep, '/')
            client.put_file(BUCKET, key, path, acl='public-read')
    return client


@pytest.fixture(scope='module')
def recorder(public_cloud, s3):
    """A recording proxy to the bucket's cloud (one: stopping one is slow)."""
    proxy = CloudProxy(public_cloud.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def backend(recorder):
    """What the cache asks of the bucket, recorded on its way there."""
    del recorder.requests[:]
    del recorder.headers[:]
    return recorder


@pytest.fixture
def cache_for(backend):
    """Start a cache of the bucket (a prefix in it: ``path``), empty."""
    caches = []
    address = urlparse.urlparse(backend.url)

    def start(path='/' + BUCKET, **kwargs):
        cache = VarnishCache(address.hostname, address.port, path, **kwargs)
        caches.append(cache)
        return cache
    yield start
    for cache in caches:
        cache.stop()


@pytest.fixture
def cache(cache_for):
    return cache_for()


def backend_gets(backend, key, bucket_path=BUCKET):
    """The GETs of one object that reached the bucket."""
    path = '/{0}/{1}'.format(bucket_path, key)
    return [asked for method, asked, _ in backend.requests
            if method == 'GET' and asked == path]


def ranges_sent(backend):
    """The Range headers of the requests that reached the bucket."""
    return [value for headers in backend.headers
            for name, value in headers.items() if name.lower() == 'range']


def cloud_eucarc(install_cloud, keys):
    """What sourcing a eucarc for the install cloud puts in the environment."""
    user, cloud_keys = keys
    return {'EC2_URL': install_cloud.url, 'S3_URL': install_cloud.url,
            'EUARE_URL': install_cloud.url, 'AWS_DEFAULT_REGION': REGION,
            'AWS_AUTH_REGION': REGION,
            'AWS_ACCESS_KEY_ID': install_cloud.key_id,
            'AWS_SECRET_ACCESS_KEY': install_cloud.secret_key,
            'EC2_CERT': user.cert_path, 'EC2_PRIVATE_KEY': user.key_path,
            'EUCALYPTUS_CERT': cloud_keys.cert_path,
            'EC2_USER_ID': '123456789012'}


def read(demo_store, key):
    with open(os.path.join(demo_store[0], key), 'rb') as stored:
        return stored.read()


def image_names(result):
    assert result.returncode == 0, result
    return sorted(line.split('\t')[0] for line in result.lines)


def max_age(response):
    match = re.search(r'max-age=(\d+)', response.headers['Cache-Control'])
    return int(match.group(1))


def test_shipped_site_example_compiles_with_the_shipped_vcl():
    with open(SITE_EXAMPLE) as example:
        compiled, messages = compile_vcl(example.read())
    assert compiled, messages


def test_describe_twice_reads_the_catalog_from_the_bucket_once(
        cli, cache, backend, demo_store):
    first = cli(DESCRIBE, '-U', cache.url)
    hits = cache.counters('MAIN.cache_hit')['MAIN.cache_hit']
    second = cli(DESCRIBE, '-U', cache.url)
    assert image_names(first) == sorted(
        image['name'] for image in demo_store[1].values())
    assert second.returncode == 0, second
    assert second.stdout == first.stdout
    assert len(backend_gets(backend, 'catalog')) == 1
    assert cache.counters('MAIN.cache_hit')['MAIN.cache_hit'] > hits
    response = requests.get(cache.url + 'catalog')
    assert response.headers['X-Cache'] == 'HIT'
    assert int(response.headers['Age']) >= 0
    assert response.content == read(demo_store, 'catalog')


def test_second_install_downloads_the_tarball_from_the_cache(
        cli, cache, backend, demo_store, install_cloud, keys):
    eucarc = dict(cloud_eucarc(install_cloud, keys),
                  EUSTORE_URL=cache.url)
    image = demo_store[1]['fedora']  # HVM: no kernel, so no admin needed
    installed = []
    for _ in range(2):
        # --pad-name: a second copy, not "already installed".
        result = cli(INSTALL, '-i', image['name'], '-b', 'cached-bundles',
                     '--pad-name', env=eucarc)
        assert result.returncode == 0, result
        match = re.match(r'^Installed new image (\S+)$', result.lines[-1])
        assert match, result
        installed.append(match.group(1))
    assert installed[0] != installed[1]
    # Both checked the tarball against the catalog's SHA-256; the bucket
    # was asked for it once, for the whole file.
    assert len(backend_gets(backend, image['url'])) == 1
    assert len(backend_gets(backend, 'catalog')) == 1
    assert not ranges_sent(backend)


def test_range_requests_are_answered_from_the_whole_tarball(
        cache, backend, demo_store, tmpdir):
    image = demo_store[1]['centos']
    data = read(demo_store, image['url'])
    url = cache.url + image['url']

    # A miss: Varnish fetches the whole tarball and serves the range out of
    # it as it arrives (not a pass, which would cache nothing).
    miss = requests.get(url, headers={'Range': 'bytes=1000-1999'})
    assert miss.status_code == 206
    assert miss.headers['X-Cache'] == 'MISS'
    assert miss.headers['Content-Range'] == \
        'bytes 1000-1999/{0}'.format(len(data))
    assert miss.content == data[1000:2000]

    hit = requests.get(url, headers={'Range': 'bytes={0}-'.format(
        len(data) - 500)})
    assert hit.status_code == 206
    assert hit.headers['X-Cache'] == 'HIT'
    assert hit.content == data[-500:]

    # What eustore-install-image does after a cut: resume its .part.
    dest = str(tmpdir.join(os.path.basename(image['url'])))
    with open(dest + '.part', 'wb') as part:
        part.write(data[:20000])
    answers = []

    def open_url(asked, headers):
        response = requests.get(asked, headers=headers, stream=True)
        answers.append((headers.get('Range'), response.status_code,
                        response.headers.get('X-Cache')))
        return response
    result = download(open_url, url, dest, expected_size=len(data))
    assert answers == [('bytes=20000-', 206, 'HIT')]
    assert result.sha256 == image['sha256']

    gets = backend_gets(backend, image['url'])
    assert len(gets) == 1
    assert not ranges_sent(backend)


def test_conditional_get_is_answered_304_by_the_cache(cache, backend):
    first = requests.get(cache.url + 'catalog')
    assert first.status_code == 200
    etag, modified = first.headers['ETag'], first.headers['Last-Modified']
    for validators in ({'If-None-Match': etag},
                       {'If-Modified-Since': modified}):
        again = requests.get(cache.url + 'catalog', headers=validators)
        assert again.status_code == 304, validators
        assert again.headers['X-Cache'] == 'HIT'
        assert again.headers['ETag'] == etag
    changed = requests.get(cache.url + 'catalog',
                           headers={'If-None-Match': '"another"'})
    assert changed.status_code == 200
    assert changed.content == first.content
    assert len(backend_gets(backend, 'catalog')) == 1


def test_every_client_gets_the_same_anonymous_copy(cache, backend):
    # A client's credentials are not the bucket's business (signed for the
    # cache's URL, they would not even be valid there), nor are cookies.
    first = requests.get(cache.url + 'catalog', headers={
        'Authorization': 'AWS AKID:signature', 'Cookie': 'session=1'})
    assert first.status_code == 200
    assert first.headers['X-Cache'] == 'MISS'
    (sent,) = backend.headers
    assert not [name for name in sent
                if name.lower() in ('authorization', 'cookie')]
    # Credentials, cookies, a query string or another host name for the
    # cache would each make a request uncacheable or a different object.
    for suffix, headers in (('', {}), ('', {'Cookie': 'session=1'}),
                            ('', {'Authorization': 'AWS AKID:signature'}),
                            ('', {'Host': 'emis.example.com'}),
                            ('?versionId=3', {})):
        response = requests.get(cache.url + 'catalog' + suffix,
                                headers=headers)
        assert response.status_code == 200, (suffix, headers)
        assert response.headers['X-Cache'] == 'HIT', (suffix, headers)
    # Read-only: nothing but GET and HEAD reaches the bucket.
    for method in ('PUT', 'POST', 'DELETE'):
        response = requests.request(method, cache.url + 'catalog',
                                    data=b'{}')
        assert response.status_code == 405, method
        assert response.headers['Allow'] == 'GET, HEAD'
    assert [(method, path) for method, path, _ in backend.requests] == [
        ('GET', '/{0}/catalog'.format(BUCKET))]


def test_purge_from_loopback_brings_a_new_catalog(cli, cache_for, backend,
                                                  s3, demo_store):
    # A store of its own under a prefix of the bucket, to publish into.
    catalog = json.loads(read(demo_store, 'catalog').decode('utf-8'))
    s3.put_object(BUCKET, 'purged/catalog', json.dumps(catalog).encode(),
                  acl='public-read')
    cache = cache_for('/{0}/purged'.format(BUCKET))
    before = image_names(cli(DESCRIBE, '-U', cache.url))
    assert len(before) == 3

    catalog['images'] = [image for image in catalog['images']
                         if image['os'] != 'debian']
    s3.put_object(BUCKET, 'purged/catalog', json.dumps(catalog).encode(),
                  acl='public-read')
    # Published, but the cache holds the old catalog for a while yet.
    assert image_names(cli(DESCRIBE, '-U', cache.url)) == before

    purged = cache.purge('catalog')
    assert purged.status_code == 200
    assert requests.get(cache.url + 'catalog').headers['X-Cache'] == 'MISS'
    after = image_names(cli(DESCRIBE, '-U', cache.url))
    assert after == sorted(image['name'] for image in catalog['images'])
    assert len(after) == 2
    assert len(backend_gets(backend, 'catalog', BUCKET + '/purged')) == 2


def test_purge_from_outside_the_acl_is_refused(cache_for, backend):
    # The tests' requests all come from 127.0.0.1: leave it out of the ACL.
    cache = cache_for(purgers=('192.0.2.1',))
    assert requests.get(cache.url + 'catalog').headers['X-Cache'] == 'MISS'
    assert cache.purge('catalog').status_code == 405
    assert requests.get(cache.url + 'catalog').headers['X-Cache'] == 'HIT'
    assert len(backend_gets(backend, 'catalog')) == 1


def test_catalog_ttl_is_short_and_tarball_ttl_is_long(cache_for, backend,
                                                      s3, demo_store):
    image = demo_store[1]['fedora']
    catalog = read(demo_store, 'catalog')
    for key, data in (('catalog', catalog), ('catalog.json', catalog),
                      ('catalog.asc', b'-----BEGIN PGP SIGNATURE-----\n'),
                      (image['url'], read(demo_store, image['url']))):
        s3.put_object(BUCKET, 'ttl/' + key, data, acl='public-read')
    cache = cache_for('/{0}/ttl'.format(BUCKET))
    responses = {}
    for key in ('catalog', 'catalog.json', 'catalog.asc', image['url'],
                'images/unpublished.tgz'):
        responses[key] = requests.get(cache.url + key)

    def ttl_of(key):
        (fetch,) = cache.backend_ttls(
            '^/{0}/ttl/{1}$'.format(BUCKET, re.escape(key)))
        return fetch[1:]  # ttl, grace, keep

    for key in ('catalog', 'catalog.json', 'catalog.asc'):
        assert responses[key].status_code == 200, key
        ttl, grace, keep = ttl_of(key)
        # Short, but served stale while the bucket is unreachable, and
        # kept past that to be revalidated with a conditional GET.
        assert 0 < ttl <= 300, key
        assert grace >= 3600, key
        assert keep > 0, key
        assert max_age(responses[key]) == ttl, key
    assert responses[image['url']].status_code == 200
    ttl, grace, keep = ttl_of(image['url'])
    assert ttl >= 7 * DAY
    assert max_age(responses[image['url']]) == ttl
    # Not published yet: forgotten within seconds, so it shows once it is.
    assert responses['images/unpublished.tgz'].status_code == 404
    ttl, grace, keep = ttl_of('images/unpublished.tgz')
    assert 0 <= ttl <= 10
    assert grace == 0


def test_a_store_published_behind_the_cache(
        cli, cache_for, operator, store_bucket, signing_key, install_cloud,
        keys):
    """
    The operator's whole story: a store of two images, a third published
    with --purge, all three listed through the cache at once (signed), and
    one installed from it, its tarball checked against the signed catalog.
    """
    for image in ('centos', 'debian'):
        assert operator.publish(image).returncode == 0
    cache = cache_for('/' + store_bucket)
    trust = ['-U', cache.url, '--trusted-key', signing_key.public_file]
    assert image_names(cli(DESCRIBE, *trust)) == ['centos-demo',
                                                  'debian-demo']
    result = operator.publish('fedora', '--purge', cache.url)
    assert result.returncode == 0, result
    assert result.stderr == ''  # the cache accepted the purge
    listing = cli(DESCRIBE, *trust)
    assert image_names(listing) == ['centos-demo', 'debian-demo',
                                    'fedora-demo']
    assert listing.stderr == ''

    eucarc = cloud_eucarc(install_cloud, keys)
    result = cli(INSTALL, *(trust + ['-i', 'fedora-demo', '-b',
                                     'published-bundles', '--pad-name']),
                 env=eucarc)
    assert result.returncode == 0, result
    assert re.match(r'^Installed new image \S+$', result.lines[-1])
