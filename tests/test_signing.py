# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
requestbuilder's signers (as eustore_plugin.compat replaces them) against
real servers that check signatures: moto's EC2, and the S3 under test (moto,
or Ceph RGW with EUSTORE_TEST_S3=rgw).  tests/test_compat.py compares them
with botocore byte for byte; this shows servers agree, for EC2 query
requests, S3 uploads, and (on RGW, which checks them where moto cannot)
HMAC-V1 signatures, euca2ools' for S3, on every awkward key.
"""

from __future__ import absolute_import

import io
import os
import uuid

import pytest
from requestbuilder import Arg
from requestbuilder.auth.aws import HmacV1Auth, HmacV4Auth
from requestbuilder.exceptions import ServerError
from requestbuilder.request import AWSQueryRequest, BaseRequest
from requestbuilder.service import BaseService

import eustore_plugin  # noqa: F401  (applies the compatibility fixes)
from eustore_plugin.cloud.services import parse_xml
from eustore_plugin.urlkeys import s3_path
from tests.support.moto import REGION
from tests.support.objectkeys import KEY_PARAMS
from tests.support.rgw import s3_under_test


class EC2(BaseService):
    NAME = 'ec2'
    API_VERSION = '2016-11-15'
    ARGS = [Arg('-U', '--url')]


class S3(BaseService):
    NAME = 's3'
    ARGS = [Arg('-U', '--url')]


class DescribeRegions(AWSQueryRequest):
    SERVICE_CLASS = EC2
    AUTH_CLASS = HmacV4Auth
    METHOD = 'POST'
    LIST_TAGS = ['regionInfo']


class S3Request(BaseRequest):
    SERVICE_CLASS = S3
    AUTH_CLASS = HmacV4Auth


class S3RequestV1(S3Request):
    AUTH_CLASS = HmacV1Auth


def endpoint(cloud):
    # "region::url" is requestbuilder's way to name the SigV4 region.
    return '{0}::{1}'.format(REGION, cloud.url)


def s3(cloud, method, path, body=None, headers=None, request_cls=S3Request):
    request = request_cls(url=endpoint(cloud), key_id=cloud.key_id,
                          secret_key=cloud.secret_key)
    request.method = method
    request.path = path
    request.headers = headers or {}
    if body is not None:
        request.body = body
    return request.main()


def test_ec2_query_request_is_accepted(moto_cloud):
    result = DescribeRegions(url=endpoint(moto_cloud),
                             key_id=moto_cloud.key_id,
                             secret_key=moto_cloud.secret_key).main()
    assert REGION in [region['regionName']
                      for region in result['regionInfo']]


def test_wrong_secret_is_refused(moto_cloud):
    with pytest.raises(ServerError) as caught:
        DescribeRegions(url=endpoint(moto_cloud), key_id=moto_cloud.key_id,
                        secret_key=moto_cloud.secret_key[::-1]).main()
    assert caught.value.status_code in (401, 403)


def test_s3_uploads_of_bytes_and_files(s3_cloud, tmpdir):
    bucket = 'signing-test-' + uuid.uuid4().hex[:10]
    s3(s3_cloud, 'PUT', bucket)
    payload = os.urandom(300000)
    s3(s3_cloud, 'PUT', bucket + '/dir/image.part.00', body=payload,
       headers={'x-amz-acl': 'public-read'})
    part_file = tmpdir.join('part')
    part_file.write(payload[::-1], mode='wb')
    with io.open(str(part_file), 'rb') as body:
        s3(s3_cloud, 'PUT', bucket + '/dir/image.part.01', body=body)
    first = s3(s3_cloud, 'GET', bucket + '/dir/image.part.00')
    second = s3(s3_cloud, 'GET', bucket + '/dir/image.part.01')
    assert first.content == payload
    assert second.content == payload[::-1]


@pytest.fixture(scope='module')
def v1_bucket(s3_cloud):
    if s3_under_test() != 'rgw':
        pytest.skip('moto cannot check HMAC-V1 signatures; the RGW leg '
                    '(EUSTORE_TEST_S3=rgw) checks them')
    bucket = 'signing-v1-' + uuid.uuid4().hex[:10]
    s3(s3_cloud, 'PUT', bucket, request_cls=S3RequestV1)
    return bucket


@pytest.mark.parametrize('key', KEY_PARAMS)
def test_hmac_v1_signs_every_awkward_key_as_rgw_checks(s3_cloud, v1_bucket,
                                                       key):
    def v1(method, key=None, **kwargs):
        return s3(s3_cloud, method, s3_path(v1_bucket, key, kwargs.pop(
            'params', None)), request_cls=S3RequestV1, **kwargs)
    body = key.encode('utf-8')
    v1('PUT', key, body=body)
    assert v1('GET', key).content == body
    assert v1('HEAD', key).headers['Content-Length'] == str(len(body))
    listing = parse_xml(v1('GET', params={'prefix': key}).content,
                        ('Contents',))['ListBucketResult']
    assert [entry['Key'] for entry in listing['Contents']] == [key]
    v1('DELETE', key)
    with pytest.raises(ServerError) as caught:
        v1('HEAD', key)
    assert caught.value.status_code == 404
