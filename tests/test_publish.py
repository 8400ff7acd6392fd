# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Running an image store: eustore-publish-image, eustore-withdraw-image and
eustore-check-store against a store_bucket in moto's S3 on loopback, read back
anonymously as clients read a store, with catalogs signed by a throwaway
OpenPGP key and checked by gpgv.
"""

from __future__ import absolute_import

import hashlib
import json
import logging
import os.path
import threading

import pytest
import six

from eustore_plugin.catalogs.catalog import Catalog, catalog_with_image
from eustore_plugin.publish.bucket import StoreBucket, StoreLockedError
from eustore_plugin.publish.transaction import change_catalog
from eustore_plugin.urlkeys import quote_key
from tests.support.demostore import TARBALLS
from tests.support.gpg import missing_tools
from tests.support.http import header
from tests.support.moto import direct_cloud

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=(
    'gpg and gpgv are needed to sign and check catalogs: run scripts/setup '
    '(it installs the gnupg and gpgv packages)'))

PUBLISH = 'eustore-publish-image'
WITHDRAW = 'eustore-withdraw-image'
CHECK = 'eustore-check-store'
DESCRIBE = 'eustore-describe-images'


@pytest.fixture
def cloud(public_cloud):
    return direct_cloud(public_cloud)


def tarball_bytes(demo_store_dir, image):
    with open(os.path.join(demo_store_dir, 'images', TARBALLS[image]),
              'rb') as tarball:
        return tarball.read()


def read_catalog(cloud, store_bucket):
    return json.loads(cloud.get_object(store_bucket,
                                       'catalog').decode('utf-8'))


def test_publish_then_list_and_check_the_store(
        operator, cli, cloud, store_bucket, store_url, signing_key,
        demo_store_dir):
    for image in ('centos', 'debian', 'fedora'):
        result = operator.publish(image)
        assert result.returncode == 0, result
    data = tarball_bytes(demo_store_dir, 'fedora')
    sha256 = hashlib.sha256(data).hexdigest()
    key = 'images/{0}/{1}'.format(sha256[:16], TARBALLS['fedora'])
    assert result.lines == ['Published image fedora-demo: {0}/{1} ({2} '
                            'bytes, sha256 {3})'.format(store_bucket, key,
                                                        len(data), sha256)]
    assert result.stderr == ''

    entries = dict((entry['name'], entry)
                   for entry in read_catalog(cloud, store_bucket)['images'])
    assert sorted(entries) == ['centos-demo', 'debian-demo', 'fedora-demo']
    assert entries['fedora-demo']['url'] == key
    assert entries['fedora-demo']['size'] == len(data)
    assert entries['fedora-demo']['sha256'] == sha256
    assert entries['fedora-demo']['virtualization_type'] == 'hvm'
    # Read from the tarball itself: a kernel per hypervisor.
    assert entries['debian-demo']['single-kernel'] == 'False'
    assert entries['debian-demo']['hypervisors-supported'] == ['kvm', 'xen']
    assert entries['centos-demo']['single-kernel'] == 'True'
    assert cloud.get_object(store_bucket, key) == data
    # No lock is left behind.
    assert 'catalog.lock' not in cloud.list_keys(store_bucket)

    # Clients read the store anonymously, checking the signature.
    listing = cli(DESCRIBE, '-U', store_url, '--trusted-key',
                  signing_key.public_file)
    assert listing.returncode == 0, listing
    assert [line.split('\t')[0] for line in listing.lines] == [
        'centos-demo', 'debian-demo', 'fedora-demo']
    assert listing.stderr == ''

    check = cli(CHECK, '-U', store_url, '--trusted-key',
                signing_key.public_file)
    assert check.returncode == 0, check
    assert check.lines == [
        'OK\tcatalog\tsigned by {0}'.format(signing_key.fingerprint),
        'OK\tcentos-demo', 'OK\tdebian-demo', 'OK\tfedora-demo']


def test_a_tarball_install_would_refuse_is_not_published(operator, cloud,
                                                         store_bucket, tmpdir):
    from tests.test_layout import make_tarball
    tarball = make_tarball(str(tmpdir.join('two-disks.tgz')), [
        ('x/a.img', b'a' * 10), ('x/b.img', b'b' * 10)])
    result = operator(PUBLISH, '-t', tarball, '-s', 'x', '-a', 'x86_64',
                      '--os', 'linux')
    assert result.returncode == 1
    assert 'several disk images' in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not cloud.bucket_exists(store_bucket)

    result = operator(PUBLISH, '-t', tarball.replace('.tgz', '.img'), '-s',
                      'x', '-a', 'x86_64', '--os', 'linux')
    assert result.returncode == 2  # a usage error, as argparse exits
    assert 'no such file' in result.stderr


def test_republishing_replaces_the_entry_and_its_old_tarball(
        operator, cloud, store_bucket, operator_s3, demo_store_dir):
    assert operator.publish('centos').returncode == 0
    old_url = read_catalog(cloud, store_bucket)['images'][0]['url']
    # The same tarball again: the entry is rewritten, the tarball is not.
    puts_before = len([1 for method, _, _ in operator_s3.requests
                       if method == 'PUT'])
    result = operator.publish('centos', '--image-version', '6.6')
    assert result.returncode == 0, result
    assert result.lines[0].startswith('Replaced image centos-demo: ')
    assert not [path for method, path, _ in operator_s3.requests[puts_before:]
                if method == 'PUT' and path.endswith('.tgz')]
    # Another tarball under the same name replaces it, and the old tarball
    # goes once no entry names it.
    result = operator(PUBLISH, '-t', os.path.join(
        demo_store_dir, 'images', TARBALLS['fedora']), '-i', 'centos-demo',
        '-s', 'now HVM', '-a', 'x86_64', '--os', 'centos', '--sign-key',
        'store@example.com')
    assert result.returncode == 0, result
    images = read_catalog(cloud, store_bucket)['images']
    assert [image['name'] for image in images] == ['centos-demo']
    assert images[0]['description'] == 'now HVM'
    keys = cloud.list_keys(store_bucket)
    assert old_url not in keys
    assert images[0]['url'] in keys


def test_withdraw_removes_the_entry_then_the_tarball(operator, cloud,
                                                     store_bucket):
    assert operator.publish('centos').returncode == 0
    assert operator.publish('fedora').returncode == 0
    urls = dict((image['name'], image['url'])
                for image in read_catalog(cloud, store_bucket)['images'])
    result = operator(WITHDRAW, '-i', 'centos-demo', '--sign-key',
                      'store@example.com')
    assert result.returncode == 0, result
    assert result.lines == ['Withdrew image centos-demo']
    assert [image['name'] for image in read_catalog(cloud, store_bucket)[
        'images']] == ['fedora-demo']
    keys = cloud.list_keys(store_bucket)
    assert urls['centos-demo'] not in keys
    assert urls['fedora-demo'] in keys

    result = operator(WITHDRAW, '-i', 'fedora-dem', '--sign-key',
                      'store@example.com')
    assert result.returncode == 1
    assert 'no image named "fedora-dem"' in result.stderr
    assert 'fedora-demo' in result.stderr
    assert urls['fedora-demo'] in cloud.list_keys(store_bucket)


def test_a_tarball_whose_key_needs_escaping(operator, cli, cloud,
                                            store_bucket, store_url,
                                            signing_key, demo_store_dir,
                                            tmpdir):
    # & and < are escaped in S3's XML; the space, <, #, ?, % and + in
    # URLs (# and ? would end the path, and + and @ are kept as they are
    # by some and signed encoded by AWS's rules); the rest is not ASCII.
    name = u'fedora & <friends> #1 (100%) +@ d\xe9mo \u2603?.tgz'
    tarball = tmpdir.join(name)
    tarball.write(tarball_bytes(demo_store_dir, 'fedora'), mode='wb')
    result = operator(PUBLISH, '-t', six.ensure_str(tarball.strpath),
                      '-i', 'awkward', '-s', 'Fedora, awkwardly named',
                      '-a', 'x86_64', '--os', 'fedora',
                      '--sign-key', 'store@example.com')
    assert result.returncode == 0, result
    (entry,) = read_catalog(cloud, store_bucket)['images']
    key = u'images/{0}/{1}'.format(entry['sha256'][:16], name)
    assert result.lines[0].startswith(u'Published image awkward: {0}/{1} ('
                                      .format(store_bucket, key))
    # The catalog's url is the key percent-encoded, and names it alone.
    assert entry['url'] == quote_key(key)
    assert cloud.list_keys(store_bucket, 'images/') == [key]
    # Clients fetch it by that URL.
    check = cli(CHECK, '-U', store_url, '--trusted-key',
                signing_key.public_file)
    assert check.lines[1:] == ['OK\tawkward'], check
    result = operator(WITHDRAW, '-i', 'awkward', '--sign-key',
                      'store@example.com')
    assert result.returncode == 0, result
    assert cloud.list_keys(store_bucket, 'images/') == []


def test_concurrent_publishers_lose_no_entry(operator, cli, cloud,
                                             store_bucket, store_url,
                                             signing_key):
    assert operator.publish('centos').returncode == 0
    results = {}

    def publish(index):
        results[index] = operator.publish(
            'fedora', '-i', 'parallel-{0}'.format(index))

    threads = [threading.Thread(target=publish, args=(index,))
               for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[index].returncode for index in range(4)] == [0] * 4, \
        results
    names = sorted(image['name']
                   for image in read_catalog(cloud, store_bucket)['images'])
    assert names == ['centos-demo'] + ['parallel-{0}'.format(index)
                                       for index in range(4)]
    # The signature that was written last is that of the catalog written
    # last.
    listing = cli(DESCRIBE, '-U', store_url, '--trusted-key',
                  signing_key.public_file)
    assert listing.returncode == 0, listing
    assert len(listing.lines) == 5


def test_the_store_lock(operator, cloud, store_bucket):
    assert operator.publish('centos').returncode == 0
    store = StoreBucket(cloud, store_bucket)
    store.lock()
    try:
        with pytest.raises(StoreLockedError) as caught:
            StoreBucket(cloud, store_bucket).lock(wait=0.3)
        message = str(caught.value)
        assert 'pid {0}'.format(os.getpid()) in message
        assert '--break-lock' in message
        # An operator who knows the holder is gone breaks the lock.
        result = operator.publish('fedora', '--break-lock')
        assert result.returncode == 0, result
        assert "breaking the store's lock, held by " in result.stderr
    finally:
        store.unlock()
    assert len(read_catalog(cloud, store_bucket)['images']) == 2


def test_a_catalog_changed_underneath_is_read_again(operator, cloud,
                                                    store_bucket):
    """A writer that ignored the lock is caught by the If-Match write."""
    assert operator.publish('centos', unsigned=True).returncode == 0
    store = StoreBucket(cloud, store_bucket)
    _, etag = store.read_catalog()
    assert not store.write_catalog(b'{"images": []}', '"0123"')
    assert not store.write_catalog(b'{"images": []}', None)
    calls = []

    def change(document, now):
        if not calls:
            # Another writer, between this one's read and its write.
            intruder, _ = catalog_with_image(document, {'name': 'intruder'})
            cloud.put_object(store_bucket, 'catalog', intruder,
                             acl='public-read')
        calls.append(document)
        return catalog_with_image(document, {'name': 'ours'})

    logging.disable(logging.WARNING)  # change_catalog warns: unsigned
    try:
        change_catalog(store, change)
    finally:
        logging.disable(logging.NOTSET)
    assert len(calls) == 2
    names = [image.name for image in Catalog.parse(
        cloud.get_object(store_bucket, 'catalog')).images]
    assert names == ['centos-demo', 'intruder', 'ours']


def test_a_signed_store_stays_signed(operator, cloud, store_bucket):
    assert operator.publish('centos').returncode == 0
    before = cloud.get_object(store_bucket, 'catalog')
    result = operator.publish('fedora', unsigned=True)
    assert result.returncode == 1
    assert 'is signed; give --sign-key' in result.stderr
    assert cloud.get_object(store_bucket, 'catalog') == before
    # The tarball uploaded for it was taken away again.
    assert [key for key in cloud.list_keys(store_bucket)
            if key.endswith('.tgz')] == [
        json.loads(before.decode('utf-8'))['images'][0]['url']]


def test_a_key_that_cannot_sign_fails_before_uploading(operator, cloud,
                                                       store_bucket):
    result = operator.publish('centos', '--sign-key', 'nobody@example.com')
    assert result.returncode == 1
    assert 'nobody@example.com' in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not cloud.bucket_exists(store_bucket)


def test_a_catalog_altered_by_one_byte_is_refused(operator, cli, cloud,
                                                  store_bucket, store_url,
                                                  signing_key):
    assert operator.publish('centos').returncode == 0
    catalog = bytearray(cloud.get_object(store_bucket, 'catalog'))
    position = catalog.index(b'CentOS demo')
    catalog[position] = ord(b'K')
    cloud.put_object(store_bucket, 'catalog', bytes(catalog),
                     acl='public-read')
    result = cli(DESCRIBE, '-U', store_url, '--trusted-key',
                 signing_key.public_file)
    assert result.returncode == 1
    assert result.stdout == ''
    assert 'refusing the catalog at {0}catalog'.format(store_url) in \
        result.stderr
    assert 'bad signature' in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_swapped_and_altered_tarballs_are_found_by_check(
        operator, cli, cloud, store_bucket, store_url, signing_key,
        demo_store_dir):
    assert operator.publish('centos').returncode == 0
    assert operator.publish('fedora').returncode == 0
    urls = dict((image['name'], image['url'])
                for image in read_catalog(cloud, store_bucket)['images'])
    # Another tarball in fedora's place, and centos's altered by one byte.
    cloud.put_object(store_bucket, urls['fedora-demo'],
                     tarball_bytes(demo_store_dir, 'debian'),
                     acl='public-read')
    altered = bytearray(tarball_bytes(demo_store_dir, 'centos'))
    altered[1000] ^= 0xff
    cloud.put_object(store_bucket, urls['centos-demo'], bytes(altered),
                     acl='public-read')
    result = cli(CHECK, '-U', store_url, '--trusted-key',
                 signing_key.public_file)
    assert result.returncode == 1
    assert result.lines[0] == 'OK\tcatalog\tsigned by {0}'.format(
        signing_key.fingerprint)
    assert result.lines[1].startswith('FAILED\tcentos-demo\tsha256 should '
                                      'be ')
    assert result.lines[2].startswith('FAILED\tfedora-demo\t')
    assert 'its catalog says {0}'.format(len(tarball_bytes(
        demo_store_dir, 'fedora'))) in result.lines[2]
    assert result.stderr.strip().endswith('2 of 2 images failed the check')
    # --quick sees only what sizes tell.
    quick = cli(CHECK, '-U', store_url, '--quick', '--trusted-key',
                signing_key.public_file)
    assert quick.returncode == 1
    assert quick.lines[1] == 'OK\tcentos-demo'
    assert quick.lines[2].startswith('FAILED\tfedora-demo\tsize should be ')


def test_a_stranger_key_does_not_verify(operator, cli, store_url,
                                        stranger_key):
    assert operator.publish('centos').returncode == 0
    result = cli(DESCRIBE, '-U', store_url, '--trusted-key',
                 stranger_key.public_file)
    assert result.returncode == 1
    assert 'refusing the catalog' in result.stderr
    assert stranger_key.public_file in result.stderr


# Ceph RGW 16 compares a PUT's If-Match, quoted as HTTP has ETags, with its
# own bare ETag: it refuses them all (412).  The proxy answers so here,
# whatever the S3 under test (on RGW itself, it is what RGW does).

def if_match_quoted(method, path, body, headers):
    return method == 'PUT' and \
        (header(headers, 'If-Match') or '').startswith('"')


def if_match_sent(operator_s3, since=0):
    return [(path.rsplit('/', 1)[-1], header(headers, 'If-Match'))
            for (method, path, _), headers in zip(
                operator_s3.requests[since:], operator_s3.headers[since:])
            if method == 'PUT' and header(headers, 'If-Match')]


def test_an_if_match_the_server_misreads_is_asked_bare(
        operator, operator_s3, cli, cloud, store_bucket, store_url,
        signing_key):
    assert operator.publish('centos').returncode == 0
    catalog_etag = cloud.head_object(store_bucket, 'catalog')['ETag']
    signature_etag = cloud.head_object(store_bucket, 'catalog.asc')['ETag']
    operator_s3.fail(if_match_quoted, status=412, times=100,
                     with_headers=True)
    since = len(operator_s3.requests)
    result = operator.publish('fedora')
    assert result.returncode == 0, result
    assert result.stderr == ''
    # Refused quoted while its ETag had not moved: asked again bare, and
    # from then on.
    bare = catalog_etag.strip('"')
    assert if_match_sent(operator_s3, since) == [
        ('catalog', catalog_etag), ('catalog', bare),
        ('catalog.asc', signature_etag.strip('"'))]
    withdrawn = operator(WITHDRAW, '-i', 'centos-demo', '--sign-key',
                         'store@example.com')
    assert withdrawn.returncode == 0, withdrawn
    listing = cli(DESCRIBE, '-U', store_url, '--trusted-key',
                  signing_key.public_file)
    assert [line.split('\t')[0] for line in listing.lines] == ['fedora-demo']


def test_a_conflict_is_told_from_a_misread_if_match(
        operator, operator_s3, public_cloud, cloud, store_bucket):
    """A 412 once the ETag moved is another writer's change: read again."""
    assert operator.publish('centos', unsigned=True).returncode == 0
    operator_s3.fail(if_match_quoted, status=412, times=100,
                     with_headers=True)
    store = StoreBucket(direct_cloud(public_cloud, operator_s3.url),
                        store_bucket)
    document, etag = store.read_catalog()
    intruder, _ = catalog_with_image(document, {'name': 'intruder'})
    cloud.put_object(store_bucket, 'catalog', intruder, acl='public-read')
    assert store.write_catalog(b'{"images": []}', etag) is None
    # Once for the misread-or-conflict question, and not again bare.
    assert if_match_sent(operator_s3) == [('catalog', etag)]
    assert cloud.get_object(store_bucket, 'catalog') == intruder


def test_if_match_refused_however_sent_writes_under_the_lock_alone(
        operator, operator_s3, cloud, store_bucket):
    assert operator.publish('centos').returncode == 0
    operator_s3.fail(lambda method, path, body, headers: method == 'PUT' and
                     header(headers, 'If-Match'), status=412, times=100,
                     with_headers=True)
    result = operator.publish('fedora')
    assert result.returncode == 0, result
    (warning,) = result.stderr.splitlines()
    assert 'refuses If-Match even with the ETag {0}/catalog has'.format(
        store_bucket) in warning
    assert "only the store's lock keeps other publishers from" in warning
    assert [image['name'] for image in read_catalog(
        cloud, store_bucket)['images']] == ['centos-demo', 'fedora-demo']


def test_a_failed_signature_puts_the_catalog_back_on_a_misreading_server(
        operator, operator_s3, cli, cloud, store_bucket, store_url,
        signing_key):
    assert operator.publish('centos').returncode == 0
    before = cloud.get_object(store_bucket, 'catalog')
    operator_s3.fail(if_match_quoted, status=412, times=100,
                     with_headers=True)
    operator_s3.fail(lambda method, path, body: method == 'PUT' and
                     path.endswith('/catalog.asc'), status=403)
    result = operator.publish('fedora')
    assert result.returncode == 1
    assert 'Injected' in result.stderr.splitlines()[-1], result
    # The catalog written is taken back (If-Match on its ETag, bare), so
    # the store's catalog and signature still match.
    assert cloud.get_object(store_bucket, 'catalog') == before
    listing = cli(DESCRIBE, '-U', store_url, '--trusted-key',
                  signing_key.public_file)
    assert listing.returncode == 0, listing
    assert [line.split('\t')[0] for line in listing.lines] == ['centos-demo']
