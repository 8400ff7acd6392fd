# -*- coding: utf-8 -*-
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Cloud's S3 operations against the S3 under test (moto, or Ceph RGW with
EUSTORE_TEST_S3=rgw; both check SigV4 signatures) on loopback: keys that
XML, URLs and signatures must escape, and listings longer than one page.
"""

from __future__ import absolute_import

import threading
import uuid

import pytest
from six.moves.urllib.parse import parse_qs, urlparse

from eustore_plugin.cloud.client import check_bucket
from eustore_plugin.cloud.services import AclRefusedError
from tests.support.http import header
from tests.support.moto import CloudProxy, direct_cloud
from tests.support.objectkeys import KEY_PARAMS
from tests.support.rgw import s3_under_test

# What S3's XML escapes (& and <), what a URL escapes (space, <, >), and
# what is not ASCII; listed as S3 lists keys, in UTF-8 byte order.
AWKWARD_KEYS = [u'images/a&amp;b.tgz', u'images/a&b.tgz',
                u'images/d\xe9bian 7 \u2603.tgz', u'images/x <y> z.tgz',
                u'plain.tgz']


@pytest.fixture
def cloud(s3_cloud):
    return direct_cloud(s3_cloud)


@pytest.fixture
def bucket(cloud):
    name = 'cloud-test-' + uuid.uuid4().hex[:10]
    cloud.create_bucket(name)
    yield name
    for key in cloud.list_keys(name):
        cloud.delete_object(name, key)
    cloud.delete_bucket(name)


def test_keys_xml_and_urls_escape_round_trip(cloud, bucket):
    for number, key in enumerate(AWKWARD_KEYS):
        cloud.put_object(bucket, key, u'object {0}'.format(number).encode(),
                         acl='private')
    # Unescaped once, as S3 means them: "&amp;" in a key is a key of its
    # own, not "&".
    assert cloud.list_keys(bucket) == sorted(
        AWKWARD_KEYS, key=lambda key: key.encode('utf-8'))
    for number, key in enumerate(AWKWARD_KEYS):
        assert cloud.get_object(bucket, key) == \
            u'object {0}'.format(number).encode()
        assert cloud.head_object(bucket, key) is not None
    assert cloud.list_keys(bucket, u'images/d\xe9') == [AWKWARD_KEYS[2]]
    assert cloud.list_keys(bucket, u'images/a&') == AWKWARD_KEYS[:2]
    for key in AWKWARD_KEYS:
        cloud.delete_object(bucket, key)
    assert cloud.list_keys(bucket) == []


@pytest.mark.parametrize('key', KEY_PARAMS)
def test_each_awkward_key_round_trips(cloud, bucket, key):
    # Signed as AWS specifies (tests/test_compat.py checks the signatures
    # against botocore's), so the server takes each request; the key is
    # the same object's every time.
    body = key.encode('utf-8')
    cloud.put_object(bucket, key, body, acl='private')
    assert cloud.get_object(bucket, key) == body
    assert int(cloud.head_object(bucket, key)['Content-Length']) == len(body)
    assert cloud.list_keys(bucket, key) == [key]
    assert cloud.list_keys(bucket) == [key]
    cloud.delete_object(bucket, key)
    assert cloud.head_object(bucket, key) is None
    assert cloud.list_keys(bucket) == []


def test_a_listing_of_more_than_1000_keys_is_read_whole(public_cloud):
    # The objects are made four at a time, and left for the server to
    # forget (RGW's memory, moto's): the listing is what is tested.
    bucket = 'many-keys-' + uuid.uuid4().hex[:10]
    keys = ['part.{0:04d}'.format(number) for number in range(1005)]
    cloud = direct_cloud(public_cloud)
    cloud.create_bucket(bucket)

    def put_every_fourth(start):
        for key in keys[start::4]:
            cloud.put_object(bucket, key, b'', acl='private')
    threads = [threading.Thread(target=put_every_fourth, args=(start,))
               for start in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    proxy = CloudProxy(public_cloud.url)
    try:
        assert direct_cloud(public_cloud, proxy.url).list_keys(bucket) == \
            keys
        listings = [urlparse(path) for method, path, _ in proxy.requests
                    if method == 'GET']
    finally:
        proxy.stop()
    # S3 gives at most 1000 keys a page: the second page is asked for
    # from where the first ended (the last key, or the NextMarker given).
    assert [listing.path for listing in listings] == ['/' + bucket] * 2
    assert 'marker' not in parse_qs(listings[0].query)
    assert parse_qs(listings[1].query)['marker'][0]


@pytest.fixture
def s3_proxy(s3_cloud):
    """The S3 under test behind a recording, fault-injecting proxy."""
    proxy = CloudProxy(s3_cloud.url)
    yield proxy
    proxy.stop()


def refuse_exec_read(s3_proxy, then_hang=False):
    """Make the S3 refuse aws-exec-read as RGW does; RGW does itself (moto
    takes it)."""
    if s3_under_test() == 'rgw' and not then_hang:
        return
    s3_proxy.fail(lambda method, path, body, headers: method == 'PUT' and
                  header(headers, 'x-amz-acl') == 'aws-exec-read',
                  status=400, code='InvalidArgument', times=100,
                  with_headers=True, then_hang=then_hang)


def test_a_canned_acl_the_s3_refuses_is_named(s3_cloud, s3_proxy, bucket):
    refuse_exec_read(s3_proxy)
    cloud = direct_cloud(s3_cloud, s3_proxy.url)
    with pytest.raises(AclRefusedError) as caught:
        cloud.put_file(bucket, 'image.part.0', __file__)  # the default ACL
    assert caught.value.acl == 'aws-exec-read'
    assert str(caught.value) == (
        'S3 at {0} does not take the canned ACL "aws-exec-read" (it answered '
        '400 InvalidArgument to {1}/image.part.0): choose one it takes with '
        '--acl'.format(s3_proxy.url, bucket))
    # A dry run's probe uses the ACL the objects would get, and says so.
    with pytest.raises(AclRefusedError) as caught:
        check_bucket(cloud, bucket, 'images/', acl='aws-exec-read')
    assert str(caught.value).startswith(
        'S3 at {0} does not take the canned ACL "aws-exec-read" (it answered '
        '400 InvalidArgument to {1}/images/eustore-dry-run-'.format(
            s3_proxy.url, bucket))
    assert check_bucket(cloud, bucket, 'images/', acl='private') is True
    assert cloud.list_keys(bucket) == []


def test_after_a_refused_acl_the_next_request_is_answered(s3_cloud,
                                                          s3_proxy, bucket):
    # RGW was seen leaving the next request on the connection that carried
    # the refused ACL unanswered until the client's read timeout (a
    # rollback's first DELETE would wait there); the proxy does so here.
    refuse_exec_read(s3_proxy, then_hang=True)
    cloud = direct_cloud(s3_cloud, s3_proxy.url)
    cloud.s3.timeout, cloud.s3.max_retries = 10, 0
    cloud.put_object(bucket, 'image.part.0', b'part', acl='private')
    with pytest.raises(AclRefusedError):
        cloud.put_object(bucket, 'image.part.1', b'part')
    cloud.delete_object(bucket, 'image.part.0')
    assert cloud.list_keys(bucket) == []
