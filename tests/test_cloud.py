# -*- coding: utf-8 -*-
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Cloud's S3 operations against moto (checking SigV4 signatures) on loopback:
keys that XML and URLs must escape, and listings longer than one page.
"""

from __future__ import absolute_import

import threading
import uuid

import pytest
import requests
from six.moves.urllib.parse import parse_qs, urlparse

from tests.support.moto import CloudProxy, direct_cloud

# What S3's XML escapes (& and <), what a URL escapes (space, <, >), and
# what is not ASCII; listed as S3 lists keys, in UTF-8 byte order.
AWKWARD_KEYS = [u'images/a&amp;b.tgz', u'images/a&b.tgz',
                u'images/d\xe9bian 7 \u2603.tgz', u'images/x <y> z.tgz',
                u'plain.tgz']


@pytest.fixture
def cloud(moto_cloud):
    return direct_cloud(moto_cloud)


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
        cloud.put_object(bucket, key, u'object {0}'.format(number).encode())
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


def test_a_listing_of_more_than_1000_keys_is_read_whole(public_cloud):
    # The objects are made with plain requests to a moto that checks no
    # signatures (a thousand signed PUTs and DELETEs would take a minute),
    # and left for the moto to forget: the listing is what is tested.
    bucket = 'many-keys-' + uuid.uuid4().hex[:10]
    keys = ['part.{0:04d}'.format(number) for number in range(1005)]
    requests.put(public_cloud.url + bucket).raise_for_status()

    def put_every_fourth(start):
        session = requests.Session()
        session.trust_env = False
        for key in keys[start::4]:
            session.put(public_cloud.url + bucket + '/' + key,
                        data=b'').raise_for_status()
        session.close()
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
