# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-publish-image and eustore-withdraw-image with --dry-run (each
problem in a test of its own, the store's objects compared before and
after) and --json, against a store bucket in moto's S3.
"""

from __future__ import absolute_import

import json
import os

import pytest

from eustore_plugin.publish.bucket import StoreBucket
from tests.support.cloudstate import bucket_state
from tests.support.demostore import TARBALLS
from tests.support.dryrun import assert_problems, checks, steps
from tests.support.gpg import missing_tools
from tests.support.http import header
from tests.support.moto import direct_cloud
from tests.support.rgw import s3_under_test

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=(
    'gpg and gpgv are needed to sign and check catalogs: run scripts/setup '
    '(it installs the gnupg and gpgv packages)'))

PUBLISH = 'eustore-publish-image'
WITHDRAW = 'eustore-withdraw-image'


@pytest.fixture
def cloud(public_cloud):
    return direct_cloud(public_cloud)


@pytest.fixture
def unchanged(cloud):
    """Run an operator's command, checking that no object changed."""
    def run(command, *args, **kwargs):
        before = bucket_state(cloud)
        result = command(*args, **kwargs)
        assert bucket_state(cloud) == before
        return result
    return run


def assert_failed_with(result, command, expected):
    assert_problems(result, expected)
    (error,) = [line for line in result.stderr.splitlines()
                if ': error: ' in line]
    assert error.startswith(command + ': error: the dry run found ')


def tarball(demo_store_dir, image):
    return os.path.join(demo_store_dir, 'images', TARBALLS[image])


def test_publishing_into_a_new_store(operator, unchanged, cloud,
                                     store_bucket, demo_store_dir,
                                     signing_key):
    result = unchanged(operator.publish, 'centos', '--dry-run')
    assert result.returncode == 0, result
    found = checks(result)
    for check in ('tarball', 'store', 'credentials', 'bucket', 'signing',
                  'entry'):
        assert found[check][0][0] == 'OK', check
    assert found['entry'] == [('OK', 'centos-demo would be added')]
    lines = steps(result)
    assert lines[0] == 'Would create bucket ' + store_bucket
    assert lines[1].startswith('Would upload {0} to {1}/images/'.format(
        tarball(demo_store_dir, 'centos'), store_bucket))
    assert lines[2:] == ['Would add image centos-demo to the catalog',
                         'Would write the catalog signed with key ' +
                         signing_key.fingerprint]
    assert not cloud.bucket_exists(store_bucket)


def test_republishing_says_the_entry_would_be_replaced(operator, unchanged,
                                                       store_bucket):
    assert operator.publish('centos').returncode == 0
    result = unchanged(operator.publish, 'centos', '--dry-run', '--purge',
                       'http://127.0.0.1:9/')
    assert result.returncode == 0, result
    assert checks(result)['entry'] == [
        ('OK', 'centos-demo would replace the entry of that name')]
    assert checks(result)['lock'] == [('OK', 'free')]
    lines = steps(result)
    assert lines[0].startswith('Would not upload ')
    assert lines[1].startswith('Would replace image centos-demo in the '
                               'catalog (was images/')
    assert lines[-1] == ('Would purge catalog and catalog.asc from '
                         'http://127.0.0.1:9/')


def test_a_tarball_install_would_refuse(operator, unchanged, tmpdir):
    from tests.test_layout import make_tarball
    bad = make_tarball(str(tmpdir.join('two-disks.tgz')), [
        ('x/a.img', b'a' * 10), ('x/b.img', b'b' * 10)])
    result = unchanged(operator, PUBLISH, '-t', bad, '-s', 'x', '-a',
                       'x86_64', '--os', 'linux', '--dry-run')
    assert_failed_with(result, PUBLISH, {'tarball': 'several disk images'})


def test_a_key_that_cannot_sign(operator, unchanged):
    result = unchanged(operator.publish, 'centos', '--dry-run',
                       '--sign-key', 'nobody@example.com')
    assert_failed_with(result, PUBLISH, {'signing': 'nobody@example.com'})


def test_a_store_bucket_that_refuses_writes(operator, unchanged,
                                            operator_s3):
    assert operator.publish('centos').returncode == 0
    operator_s3.fail(lambda method, path, body: method == 'PUT' and
                     '.probe' in path, status=403, times=1)
    result = unchanged(operator.publish, 'fedora', '--dry-run')
    assert_failed_with(result, PUBLISH, {'bucket': 'refused a probe'})


def test_a_held_lock(operator, unchanged, cloud, store_bucket):
    assert operator.publish('centos').returncode == 0
    holder = StoreBucket(cloud, store_bucket)
    holder.lock()
    try:
        result = unchanged(operator.publish, 'fedora', '--dry-run')
        assert_failed_with(result, PUBLISH, {
            'lock': 'is being changed by {0}'.format(os.uname()[1])})
        broken = unchanged(operator.publish, 'fedora', '--dry-run',
                           '--break-lock')
        assert broken.returncode == 0, broken
        assert 'would break it' in checks(broken)['lock'][0][1]
    finally:
        holder.unlock()


def test_a_catalog_that_does_not_parse(operator, unchanged, cloud,
                                       store_bucket):
    assert operator.publish('centos').returncode == 0
    cloud.put_object(store_bucket, 'catalog', b'{"images": [',
                     acl='public-read')
    result = unchanged(operator.publish, 'fedora', '--dry-run')
    assert_failed_with(result, PUBLISH, {'catalog': 'repair it by hand'})


def test_a_signed_store_needs_the_key(operator, unchanged):
    assert operator.publish('centos').returncode == 0
    result = unchanged(operator.publish, 'fedora', '--dry-run',
                       unsigned=True)
    assert_failed_with(result, PUBLISH, {'signing': 'is signed; give '
                                         '--sign-key'})


def test_a_publish_as_json(operator, store_bucket):
    result = operator.publish('centos', '--json')
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data['replaced'] is False and data['uploaded'] is True
    assert data['store'] == store_bucket + '/'
    assert data['entry']['name'] == 'centos-demo'
    assert data['entry']['url'].startswith('images/')
    again = json.loads(operator.publish('centos', '--json').stdout)
    assert again['replaced'] is True and again['uploaded'] is False
    dry = operator.publish('centos', '--json', '--dry-run')
    assert dry.returncode == 0, dry
    assert json.loads(dry.stdout)['replaced'] is True


def test_withdrawing_says_which_tarball_goes(operator, unchanged, cloud,
                                             store_bucket, signing_key):
    assert operator.publish('centos').returncode == 0
    url = json.loads(cloud.get_object(store_bucket, 'catalog').decode(
        'utf-8'))['images'][0]['url']
    result = unchanged(operator, WITHDRAW, '-i', 'centos-demo', '--dry-run',
                       '--sign-key', signing_key.fingerprint)
    assert result.returncode == 0, result
    assert checks(result)['entry'] == [
        ('OK', 'centos-demo is in the catalog ({0})'.format(url))]
    assert steps(result) == [
        'Would remove image centos-demo from the catalog',
        'Would write the catalog signed with key ' + signing_key.fingerprint,
        'Would delete the tarball {0}/{1}'.format(store_bucket, url)]


def test_withdrawing_keeps_a_tarball_another_entry_names(
        operator, unchanged, demo_store_dir, signing_key):
    assert operator.publish('centos').returncode == 0
    assert operator.publish('centos', '-i', 'centos-twin').returncode == 0
    result = unchanged(operator, WITHDRAW, '-i', 'centos-twin', '--dry-run',
                       '--sign-key', signing_key.fingerprint, '--json')
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data['tarball_deleted'] is False and data['tarball'] is None
    assert data['would'][-1].endswith(': another entry names it')


def test_withdrawing_an_image_the_catalog_lacks(operator, unchanged,
                                                signing_key):
    assert operator.publish('centos').returncode == 0
    result = unchanged(operator, WITHDRAW, '-i', 'centos-dem', '--dry-run',
                       '--sign-key', signing_key.fingerprint)
    assert_failed_with(result, WITHDRAW, {'entry': 'no image named '
                                          '"centos-dem"'})


def test_withdrawing_under_a_held_lock(operator, unchanged, cloud,
                                       store_bucket, signing_key):
    assert operator.publish('centos').returncode == 0
    holder = StoreBucket(cloud, store_bucket)
    holder.lock()
    try:
        result = unchanged(operator, WITHDRAW, '-i', 'centos-demo',
                           '--dry-run', '--sign-key',
                           signing_key.fingerprint)
    finally:
        holder.unlock()
    assert_failed_with(result, WITHDRAW, {'lock': 'is being changed by'})


def test_withdrawing_from_no_store(operator, unchanged):
    result = unchanged(operator, WITHDRAW, '-i', 'centos-demo', '--dry-run')
    assert_failed_with(result, WITHDRAW, {'bucket': 'there is no bucket'})


def test_a_withdrawal_as_json(operator, cloud, store_bucket, signing_key):
    assert operator.publish('centos').returncode == 0
    url = json.loads(cloud.get_object(store_bucket, 'catalog').decode(
        'utf-8'))['images'][0]['url']
    result = operator(WITHDRAW, '-i', 'centos-demo', '--json', '--sign-key',
                      signing_key.fingerprint)
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == {
        'name': 'centos-demo', 'url': url, 'store': store_bucket + '/',
        'tarball': url, 'tarball_deleted': True}


def test_check_store_as_json(operator, cli, cloud, store_bucket, store_url,
                             signing_key, demo_store_dir):
    assert operator.publish('centos').returncode == 0
    assert operator.publish('fedora').returncode == 0
    result = cli('eustore-check-store', '-U', store_url, '--json',
                 '--trusted-key', signing_key.public_file)
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data['signed_by'] == signing_key.fingerprint
    assert data['images'] == [
        {'name': 'centos-demo', 'status': 'OK', 'problems': []},
        {'name': 'fedora-demo', 'status': 'OK', 'problems': []}]
    url = [image['url'] for image in json.loads(cloud.get_object(
        store_bucket, 'catalog').decode('utf-8'))['images']
        if image['name'] == 'fedora-demo'][0]
    with open(tarball(demo_store_dir, 'debian'), 'rb') as other:
        cloud.put_object(store_bucket, url, other.read(), acl='public-read')
    result = cli('eustore-check-store', '-U', store_url, '--json',
                 '--trusted-key', signing_key.public_file)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data['failed'] == 1
    assert data['images'][1]['status'] == 'FAILED'
    assert data['images'][1]['problems']
    assert result.stderr.strip().endswith('1 of 2 images failed the check')
    assert len(result.stderr.splitlines()) == 1


# What the S3 under test makes of If-Match, quoted as HTTP has ETags.
HONOURED = {'moto': 'If-None-Match and If-Match honoured',
            'rgw': 'S3 refuses If-Match with the ETag an object has, quoted '
                   'as HTTP sends it, and takes it bare (as Ceph RGW 16 '
                   'reads it): the catalog would be written with the bare '
                   'ETag'}


def test_the_conditional_writes_are_tried_on_the_probe_object(
        operator, unchanged, operator_s3, store_bucket):
    assert operator.publish('centos').returncode == 0
    since = len(operator_s3.requests)
    result = unchanged(operator.publish, 'fedora', '--dry-run')
    assert result.returncode == 0, result
    assert checks(result)['conditions'] == [('OK',
                                             HONOURED[s3_under_test()])]
    # Every write of the run went to one probe object, deleted after.
    written = set((method, path) for method, path, _ in
                  operator_s3.requests[since:]
                  if method in ('PUT', 'DELETE'))
    ((_, probe),) = [(method, path) for method, path in written
                     if method == 'DELETE']
    assert written <= {('PUT', probe), ('DELETE', probe)}
    assert probe.startswith('/{0}/eustore-dry-run-'.format(store_bucket))


def test_a_server_that_misreads_if_match_is_reported(operator, unchanged,
                                                     operator_s3):
    assert operator.publish('centos').returncode == 0
    operator_s3.fail(lambda method, path, body, headers: method == 'PUT' and
                     (header(headers, 'If-Match') or '').startswith('"'),
                     status=412, times=100, with_headers=True)
    result = unchanged(operator.publish, 'fedora', '--dry-run')
    assert result.returncode == 0, result
    assert checks(result)['conditions'] == [('OK', HONOURED['rgw'])]
    operator_s3.fail(lambda method, path, body, headers: method == 'PUT' and
                     header(headers, 'If-Match'), status=412, times=100,
                     with_headers=True)
    result = unchanged(operator, WITHDRAW, '-i', 'centos-demo', '--dry-run',
                       '--sign-key', 'store@example.com')
    assert result.returncode == 0, result
    assert checks(result)['conditions'] == [('OK', (
        "S3 refuses If-Match even with the ETag an object has: the catalog "
        "would be replaced without that check, and only the store's lock "
        "would keep other publishers from overwriting each other"))]
