# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
requestbuilder's signers (patched by eustore_plugin.compat on Python 3, as
released on Python 2.7) against a real server that checks signatures: moto.
tests/test_compat.py compares them with botocore byte for byte; this shows a
server agrees, for EC2 query requests and S3 uploads.
"""

from __future__ import absolute_import

import io
import os

import pytest
from requestbuilder import Arg
from requestbuilder.auth.aws import HmacV4Auth
from requestbuilder.exceptions import ServerError
from requestbuilder.request import AWSQueryRequest, BaseRequest
from requestbuilder.service import BaseService

import eustore_plugin  # noqa: F401  (applies the compatibility fixes)
from tests.support.moto import REGION


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


def endpoint(cloud):
    # "region::url" is requestbuilder's way to name the SigV4 region.
    return '{0}::{1}'.format(REGION, cloud.url)


def s3(cloud, method, path, body=None, headers=None):
    request = S3Request(url=endpoint(cloud), key_id=cloud.key_id,
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


def test_s3_uploads_of_bytes_and_files(moto_cloud, tmpdir):
    s3(moto_cloud, 'PUT', 'signing-test')
    payload = os.urandom(300000)
    s3(moto_cloud, 'PUT', 'signing-test/dir/image.part.00', body=payload,
       headers={'x-amz-acl': 'aws-exec-read'})
    part_file = tmpdir.join('part')
    part_file.write(payload[::-1], mode='wb')
    with io.open(str(part_file), 'rb') as body:
        s3(moto_cloud, 'PUT', 'signing-test/dir/image.part.01', body=body)
    first = s3(moto_cloud, 'GET', 'signing-test/dir/image.part.00')
    second = s3(moto_cloud, 'GET', 'signing-test/dir/image.part.01')
    assert first.content == payload
    assert second.content == payload[::-1]
