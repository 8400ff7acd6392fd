# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Tests of eustore_plugin.compat, the Python 3 repairs to requestbuilder 0.7.1.

The signer tests sign one request twice, with requestbuilder's signers (as
patched by compat on Python 3, as released on Python 2.7) and with botocore's,
at one frozen instant, and require the same signature byte for byte.  They
are skipped where botocore is not installed.

Two deliberate differences from botocore are documented where they matter:

* HMAC-V1 canonical resource: requestbuilder strips the S3 endpoint's own
  path (``/services/objectstorage`` on Eucalyptus) and signs ``/bucket/key``;
  botocore signs the whole URL path unless given ``auth_path``.
* HMAC-V1 x-amz-* header values: requestbuilder folds runs of whitespace to
  one space; botocore only strips the ends.
"""

from __future__ import absolute_import

import base64
import calendar
import datetime
import email.utils
import hashlib
import io
import logging
import sys
import time

import pytest
import requestbuilder.auth.aws as rb_aws
import requestbuilder.command
import requestbuilder.config
import requestbuilder.request
import requestbuilder.service
import requests
import six
import six.moves.urllib_parse as urlparse

import eustore_plugin  # noqa: F401  -- runs compat.install()
from eustore_plugin import compat
from eustore_plugin.urlkeys import s3_path
from tests.support.objectkeys import KEY_PARAMS

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import botocore.serialize
    import botocore.session
except ImportError:  # botocore is optional (Python 2.7 may lack it)
    botocore = None

needs_botocore = pytest.mark.skipif(
    botocore is None, reason='botocore is not installed; the signers are '
    'proven against it (pip install "botocore<1.21" on Python 2.7)')

# Bugs of requestbuilder 0.7.1 that compat fixes on Python 3 only: on
# Python 2.7 requestbuilder is used as released, so these cases fail there.

KEY_ID = 'AKIDEXAMPLE'
SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
WRONG_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ'

FROZEN_DT = datetime.datetime(2015, 8, 30, 12, 36, 0)
FROZEN = calendar.timegm(FROZEN_DT.utctimetuple())
FROZEN_HTTP_DATE = 'Sun, 30 Aug 2015 12:36:00 GMT'
FROZEN_AMZ_DATE = '20150830T123600Z'


# ------------------------------------------------------------------ helpers

class StubService(object):
    """What the signers read of a requestbuilder service."""

    def __init__(self, endpoint, name, region_name='us-east-1'):
        self.endpoint = endpoint
        self.NAME = name
        self.region_name = region_name


class _FrozenTime(object):
    """The ``time`` module, stopped at FROZEN."""

    def __getattr__(self, name):
        return getattr(time, name)

    def time(self):
        return float(FROZEN)

    def gmtime(self, secs=None):
        return time.gmtime(FROZEN if secs is None else secs)

    def localtime(self, secs=None):
        return time.localtime(FROZEN if secs is None else secs)

    def strftime(self, fmt, tup=None):
        return time.strftime(fmt, self.localtime() if tup is None else tup)


class _FrozenDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return FROZEN_DT

    @classmethod
    def now(cls, tz=None):
        if tz is None:
            return FROZEN_DT
        return tz.fromutc(FROZEN_DT.replace(tzinfo=tz))


class _FrozenDatetimeModule(object):
    datetime = _FrozenDatetime

    def __getattr__(self, name):
        return getattr(datetime, name)


def _frozen_formatdate(timeval=None, localtime=False, usegmt=False):
    # requestbuilder asks for formatdate() ('-0000'), botocore for
    # formatdate(usegmt=True) ('GMT'); both get one Date header value.
    return FROZEN_HTTP_DATE


@pytest.fixture
def frozen_clock(monkeypatch):
    """Stop the clocks of requestbuilder, compat and botocore at FROZEN."""
    clock = _FrozenTime()
    monkeypatch.setattr(rb_aws, 'time', clock)
    monkeypatch.setattr(compat, 'time', clock)
    # HmacV1Auth: req.headers['Date'] = email.utils.formatdate()
    monkeypatch.setattr(email.utils, 'formatdate', _frozen_formatdate)
    if botocore is not None:
        monkeypatch.setattr(botocore.auth, 'time', clock)
        monkeypatch.setattr(botocore.auth, 'formatdate', _frozen_formatdate)
        if hasattr(botocore.auth, 'get_current_datetime'):
            # botocore >= 1.3x: get_current_datetime() -> naive UTC now
            monkeypatch.setattr(botocore.auth, 'get_current_datetime',
                                lambda *args, **kwargs: FROZEN_DT)
        else:
            # older botocore: datetime.datetime.utcnow()
            monkeypatch.setattr(botocore.auth, 'datetime',
                                _FrozenDatetimeModule())
    return clock


def _prepare(method, url, headers=None, data=None, params=None):
    with requests.Session() as session:
        return session.prepare_request(requests.Request(
            method, url, headers=headers, data=data, params=params))


def _capture_sign_string(auth):
    """Record each string requestbuilder's signer hands to sign_string."""
    seen = []
    sign_string = auth.sign_string

    def capturing_sign_string(to_sign):
        seen.append(to_sign.decode('utf-8')
                    if isinstance(to_sign, six.binary_type) else to_sign)
        return sign_string(to_sign)
    auth.sign_string = capturing_sign_string
    return seen


def _botocore_logged(caplog, prefix):
    """The first argument of botocore.auth's last log record with prefix."""
    for record in reversed(caplog.records):
        if record.name == 'botocore.auth' and record.msg.startswith(prefix):
            return record.args[0] if isinstance(record.args, tuple) \
                else record.args
    raise AssertionError('botocore did not log {0!r}'.format(prefix))


def _credentials():
    return botocore.credentials.Credentials(KEY_ID, SECRET)


def _utf8(text):
    return text.encode('utf-8') if isinstance(text, six.text_type) else text


def _native(text):
    """A str: text on Python 3, UTF-8 bytes on Python 2."""
    return _utf8(text) if six.PY2 else text


def _body_bytes(body):
    if body is None:
        return b''
    if hasattr(body, 'read'):
        pos = body.tell()
        data = body.read()
        body.seek(pos)
        return data
    return _utf8(body)


# --------------------------------------------------------- HMAC-V1 (S3 REST)

PUT_BODY = b'machine image part\n' * 64
PUT_HEADERS = {
    'Content-Type': 'application/octet-stream',
    'Content-MD5': base64.b64encode(
        hashlib.md5(PUT_BODY).digest()).decode('ascii'),
    'x-amz-acl': 'aws-exec-read',
    # Mixed case, runs of spaces, trailing space: canonicalized to
    # 'x-amz-meta-description:centos 7 x86_64'.
    'X-Amz-Meta-Description': 'centos   7  x86_64 ',
}


def _sign_hmac_v1(caplog, method, url, endpoint, headers=None, body=None,
                  secret=SECRET, bc_url=None):
    """
    Sign with both signers; return (ours, botocore's) Authorization headers
    and strings to sign, and our canonical resource and botocore's.
    botocore is given the folded x-amz-* values and, for an endpoint with a
    path, auth_path = URL path minus that path, as requestbuilder signs;
    it signs ``bc_url`` (the URL it built itself) when given, else ours.
    """
    caplog.set_level(logging.DEBUG, logger='botocore.auth')
    headers = dict(headers or {})
    prepared = _prepare(method, url, headers=headers, data=body)
    service = StubService(endpoint, 's3')
    auth = rb_aws.HmacV1Auth(config=None, key_id=KEY_ID, secret_key=secret)
    rb_sts = _capture_sign_string(auth)
    auth.apply_to_request(prepared, service)

    bc_headers = dict(
        (key, ' '.join(val.split()) if key.lower().startswith('x-amz-')
         else val) for key, val in headers.items())
    svc_path = urlparse.urlsplit(endpoint).path.rstrip('/')
    req_path = urlparse.urlsplit(prepared.url).path
    assert req_path.startswith(svc_path)
    auth_path = req_path[len(svc_path):] if svc_path else None
    bc_req = botocore.awsrequest.AWSRequest(
        method=method, url=bc_url or prepared.url, headers=bc_headers,
        data=body, auth_path=auth_path)
    bc_signer = botocore.auth.HmacV1Auth(_credentials())
    bc_signer.add_auth(bc_req)

    assert prepared.headers['Date'] == bc_req.headers['Date'] \
        == FROZEN_HTTP_DATE
    split = urlparse.urlsplit(bc_url or prepared.url)
    return {
        'ours': prepared.headers['Authorization'],
        'botocore': bc_req.headers['Authorization'],
        'our_sts': rb_sts[0],
        'botocore_sts': _botocore_logged(caplog, 'StringToSign'),
        'our_resource': auth.get_canonicalized_resource(prepared, service),
        'botocore_full_resource': bc_signer.canonical_resource(split),
        'svc_path': svc_path,
    }


HMAC_V1_CASES = [
    pytest.param('PUT', 'http://s3.example.com/bucket/centos-7.img',
                 'http://s3.example.com', PUT_HEADERS, PUT_BODY,
                 id='put-object'),
    pytest.param('GET', 'http://s3.example.com:8773/bucket?acl',
                 'http://s3.example.com:8773/', None, None,
                 id='get-bucket-acl'),
    pytest.param('PUT', 'http://s3.example.com/bucket/big.img'
                 '?uploadId=x&partNumber=2',
                 'http://s3.example.com', {'Content-Type': 'text/plain'},
                 PUT_BODY, id='put-part-two-subresources'),
]

HMAC_V1_PATH_CASES = [
    pytest.param('PUT', 'http://10.0.0.1:8773/services/objectstorage/bucket/'
                 'centos-7.img', 'http://10.0.0.1:8773/services/objectstorage',
                 PUT_HEADERS, PUT_BODY, id='path-put-object'),
    pytest.param('GET', 'http://10.0.0.1:8773/services/objectstorage/bucket',
                 'http://10.0.0.1:8773/services/objectstorage/', None, None,
                 id='path-get-bucket'),
    pytest.param('PUT', 'http://10.0.0.1:8773/services/objectstorage/bucket/'
                 'big.img?partNumber=2&uploadId=x',
                 'http://10.0.0.1:8773/services/objectstorage',
                 {'Content-Type': 'text/plain'}, PUT_BODY,
                 id='path-put-part-two-subresources'),
]


@needs_botocore
@pytest.mark.parametrize('method,url,endpoint,headers,body', HMAC_V1_CASES)
def test_hmac_v1_root_endpoint_matches_botocore(
        frozen_clock, caplog, method, url, endpoint, headers, body):
    signed = _sign_hmac_v1(caplog, method, url, endpoint, headers, body)
    assert signed['our_sts'] == signed['botocore_sts']
    assert signed['ours'] == signed['botocore']
    assert signed['our_resource'] == signed['botocore_full_resource']


@needs_botocore
@pytest.mark.parametrize('method,url,endpoint,headers,body',
                         HMAC_V1_PATH_CASES)
def test_hmac_v1_path_endpoint_matches_botocore(
        frozen_clock, caplog, method, url, endpoint, headers, body):
    # Eucalyptus convention: the endpoint's own path is not part of the
    # canonical resource.  botocore signs the full URL path, so it is given
    # auth_path (the URL path minus the service path); the signatures must
    # then be identical, and without it the two canonical resources differ
    # by exactly the service path prefix.
    signed = _sign_hmac_v1(caplog, method, url, endpoint, headers, body)
    assert signed['our_sts'] == signed['botocore_sts']
    assert signed['ours'] == signed['botocore']
    full = signed['botocore_full_resource']
    assert full.startswith(signed['svc_path'] + '/')
    assert signed['our_resource'] == full[len(signed['svc_path']):]


def test_hmac_v1_canonical_headers_and_resource():
    prepared = _prepare('PUT', 'http://10.0.0.1:8773/services/objectstorage/'
                        'bucket/k?partNumber=2&uploadId=x&foo=bar',
                        headers=PUT_HEADERS, data=PUT_BODY)
    auth = rb_aws.HmacV1Auth(config=None, key_id=KEY_ID, secret_key=SECRET)
    assert auth.get_canonicalized_headers(prepared) == (
        'x-amz-acl:aws-exec-read\n'
        'x-amz-meta-description:centos 7 x86_64\n')
    service = StubService('http://10.0.0.1:8773/services/objectstorage', 's3')
    assert auth.get_canonicalized_resource(prepared, service) == \
        '/bucket/k?partNumber=2&uploadId=x'


# ------------------------------------------------------- query signature V2

V2_URL = 'http://cloud.example.com:8773/services/compute'


def _sign_query_v2(caplog, method, params, secret=SECRET):
    """Sign with both; return (ours, botocore's) Signature and to-sign."""
    caplog.set_level(logging.DEBUG, logger='botocore.auth')
    if method == 'POST':
        prepared = _prepare(method, V2_URL, data=params)
    else:
        prepared = _prepare(method, V2_URL, params=params)
    auth = rb_aws.QueryHmacV2Auth(config=None, key_id=KEY_ID,
                                  secret_key=secret)
    rb_sts = _capture_sign_string(auth)
    auth.apply_to_request(prepared, StubService(V2_URL, 'ec2'))
    if method == 'POST':
        sent = urlparse.parse_qs(prepared.body)
    else:
        sent = urlparse.parse_qs(urlparse.urlsplit(prepared.url).query)

    bc_params = dict(params)
    if method == 'POST':
        bc_req = botocore.awsrequest.AWSRequest(method=method, url=V2_URL,
                                                data=bc_params)
    else:
        bc_req = botocore.awsrequest.AWSRequest(method=method, url=V2_URL,
                                                params=bc_params)
    botocore.auth.SigV2Auth(_credentials()).add_auth(bc_req)
    assert sent['Timestamp'] == [bc_params['Timestamp']] == \
        ['2015-08-30T12:36:00Z']
    return {
        'ours': sent['Signature'][0],
        'botocore': bc_params['Signature'],
        'our_sts': rb_sts[0],
        'botocore_sts': _botocore_logged(caplog, 'String to sign'),
    }


V2_REGISTER_IMAGE = {
    'Action': 'RegisterImage',
    'Version': '2014-06-15',
    'ImageLocation': 'my bucket/images/centos 7.manifest.xml',
    'Architecture': 'x86_64',
}


@needs_botocore
@pytest.mark.parametrize('name', [
    pytest.param(u'centos-7 (x86_64) ~latest', id='ascii-name'),
    pytest.param(u'd\xe9bian 8 \u2603', id='unicode-name'),
])
def test_query_v2_post_matches_botocore(frozen_clock, caplog, name):
    params = dict(V2_REGISTER_IMAGE, Name=name)
    signed = _sign_query_v2(caplog, 'POST', params)
    assert signed['our_sts'] == signed['botocore_sts']
    assert signed['our_sts'].startswith(
        'POST\ncloud.example.com:8773\n/services/compute\n')
    assert signed['ours'] == signed['botocore']


@needs_botocore
def test_query_v2_get_matches_botocore(frozen_clock, caplog):
    params = {'Action': 'DescribeImages', 'Version': '2014-06-15',
              'Owner.1': 'self', 'Filter.1.Name': 'name',
              'Filter.1.Value.1': 'centos 7/x86_64*~'}
    signed = _sign_query_v2(caplog, 'GET', params)
    assert signed['our_sts'] == signed['botocore_sts']
    assert 'Filter.1.Value.1=centos%207%2Fx86_64%2A~' in signed['our_sts']
    assert signed['ours'] == signed['botocore']


# ---------------------------------------------------------- signature V4

def _sign_v4(caplog, method, url, service_name, headers=None, data=None,
             params=None, secret=SECRET, bc_body=None, bc_url=None):
    """
    Sign with both; return (ours, botocore's) Authorization headers.
    botocore signs ``bc_url`` (the URL it built itself, query included)
    when given, else ours with our ``params``.
    botocore gets the very headers requestbuilder signs: the prepared
    request's but Connection (requestbuilder leaves out only Connection and
    User-Agent; botocore 1.43 leaves out both, 1.20 only User-Agent) plus
    Host and X-Amz-Content-SHA256; X-Amz-Date both add.
    """
    caplog.set_level(logging.DEBUG, logger='botocore.auth')
    prepared = _prepare(method, url, headers=headers, data=data,
                        params=params)
    body = _body_bytes(prepared.body)
    # As sent; any query goes as params.
    bc_url_as_sent = prepared.url.split('?')[0]
    start = prepared.body.tell() if hasattr(prepared.body, 'tell') else None
    # Older botocore (1.20) would sign Connection; requestbuilder never does.
    bc_headers = dict((key, val) for key, val in prepared.headers.items()
                      if key.lower() != 'connection')
    bc_headers['Host'] = urlparse.urlsplit(url).netloc
    service = StubService(url, service_name)
    auth = rb_aws.HmacV4Auth(config=None, key_id=KEY_ID, secret_key=secret)
    auth.apply_to_request(prepared, service)
    if start is not None:
        assert prepared.body.tell() == start  # the hash rewound the body

    if bc_body is None:
        bc_body = body
    if service_name == 's3':
        # S3SigV4Auth sets X-Amz-Content-SHA256 itself, from the body.
        signer = botocore.auth.S3SigV4Auth(_credentials(), service_name,
                                           service.region_name)
    else:
        signer = botocore.auth.SigV4Auth(_credentials(), service_name,
                                         service.region_name)
        bc_headers['X-Amz-Content-SHA256'] = hashlib.sha256(body).hexdigest()
    bc_params = None
    if params and not bc_url:
        bc_params = dict((_native(key), _native(val))
                         for key, val in params.items())
    bc_req = botocore.awsrequest.AWSRequest(
        method=method, url=bc_url or bc_url_as_sent, headers=bc_headers,
        data=bc_body or None, params=bc_params)
    signer.add_auth(bc_req)

    assert prepared.headers['X-Amz-Date'] == bc_req.headers['X-Amz-Date'] \
        == FROZEN_AMZ_DATE
    assert prepared.headers['X-Amz-Content-SHA256'] == \
        bc_req.headers['X-Amz-Content-SHA256'] == \
        hashlib.sha256(body).hexdigest()
    return {
        'ours': prepared.headers['Authorization'],
        'botocore': bc_req.headers['Authorization'],
        'botocore_canonical_request':
            _botocore_logged(caplog, 'CanonicalRequest'),
        'prepared': prepared,
    }


def _assert_same_v4(signed):
    assert signed['ours'] == signed['botocore'], (
        'botocore canonical request:\n' + signed['botocore_canonical_request'])


@needs_botocore
def test_v4_ec2_form_post_matches_botocore(frozen_clock, caplog):
    signed = _sign_v4(
        caplog, 'POST', 'http://127.0.0.1:8773/services/compute', 'ec2',
        data={'Action': 'RegisterImage', 'Version': '2014-06-15',
              'ImageLocation': 'my bucket/centos 7.manifest.xml',
              'Name': u'd\xe9bian 8 \u2603'})
    _assert_same_v4(signed)
    assert signed['ours'].startswith(
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/'
        'aws4_request, SignedHeaders=accept;accept-encoding;content-length;'
        'content-type;host;x-amz-content-sha256;x-amz-date, Signature=')


@needs_botocore
def test_v4_get_query_needing_encoding_matches_botocore(frozen_clock, caplog):
    signed = _sign_v4(
        caplog, 'GET', 'http://127.0.0.1:8773/services/compute', 'ec2',
        params={'Action': 'DescribeImages', 'Version': '2014-06-15',
                'Filter.1.Name': 'name',
                'Filter.1.Value.1': u'my image/~d\xe9bian 8*'})
    _assert_same_v4(signed)
    assert ('Filter.1.Value.1=my%20image%2F~d%C3%A9bian%208%2A' in
            signed['botocore_canonical_request'])


S3_URL = 'http://127.0.0.1:8773/services/objectstorage/bucket/centos-7.img'
S3_HEADERS = {'Content-Type': 'application/octet-stream',
              'x-amz-acl': 'aws-exec-read'}


@needs_botocore
def test_v4_s3_put_bytes_matches_botocore(frozen_clock, caplog):
    signed = _sign_v4(caplog, 'PUT', S3_URL, 's3', headers=S3_HEADERS,
                      data=PUT_BODY)
    _assert_same_v4(signed)


@needs_botocore
def test_v4_s3_key_needing_encoding_matches_botocore(frozen_clock, caplog):
    signed = _sign_v4(caplog, 'PUT', S3_URL.replace('centos-7', 'my image'),
                      's3', headers=S3_HEADERS, data=PUT_BODY)
    _assert_same_v4(signed)


@needs_botocore
def test_v4_s3_put_file_object_matches_botocore(frozen_clock, caplog,
                                                tmpdir):
    path = tmpdir.join('part.0')
    path.write_binary(PUT_BODY)
    with open(str(path), 'rb') as ours:
        ours.seek(7)  # hashing starts at, and rewinds to, the position
        signed = _sign_v4(caplog, 'PUT', S3_URL, 's3', headers=S3_HEADERS,
                          data=ours, bc_body=io.BytesIO(PUT_BODY[7:]))
        assert signed['prepared'].body is ours
        assert ours.tell() == 7
    _assert_same_v4(signed)


@needs_botocore
def test_v4_unseekable_body_is_spooled_and_hashed(frozen_clock, caplog):
    class Unseekable(object):
        def __init__(self, data):
            self._stream = io.BytesIO(data)

        def read(self, size=-1):
            return self._stream.read(size)

    prepared = _prepare('PUT', S3_URL, headers=dict(
        S3_HEADERS, **{'Content-Length': str(len(PUT_BODY))}))
    prepared.body = Unseekable(PUT_BODY)
    auth = rb_aws.HmacV4Auth(config=None, key_id=KEY_ID, secret_key=SECRET)
    auth.apply_to_request(prepared, StubService(S3_URL, 's3'))
    assert prepared.headers['X-Amz-Content-SHA256'] == \
        hashlib.sha256(PUT_BODY).hexdigest()
    assert prepared.body.read() == PUT_BODY  # the spool replaces the stream


@needs_botocore
def test_v4_a_declared_payload_hash_is_signed_unread(frozen_clock, caplog):
    # EBS's PutSnapshotBlock: the body goes unsigned (UNSIGNED-PAYLOAD), its
    # checksum in a signed header; botocore signs what the header declares.
    class Unreadable(object):
        def read(self, size=-1):
            raise AssertionError('the body was read')

    url = 'https://ebs.us-east-1.amazonaws.com/snapshots/snap-0a/blocks/7'
    headers = {'Content-Type': 'application/octet-stream',
               'X-Amz-Content-SHA256': 'UNSIGNED-PAYLOAD',
               'x-amz-Data-Length': '524288',
               'x-amz-Checksum': base64.b64encode(b'\0' * 32).decode(),
               'x-amz-Checksum-Algorithm': 'SHA256',
               'Content-Length': '524288'}
    prepared = _prepare('PUT', url, headers=headers)
    prepared.body = Unreadable()
    auth = rb_aws.HmacV4Auth(config=None, key_id=KEY_ID, secret_key=SECRET)
    auth.apply_to_request(prepared, StubService(url, 'ebs'))
    assert prepared.headers['X-Amz-Content-SHA256'] == 'UNSIGNED-PAYLOAD'
    bc_headers = dict((key, val) for key, val in prepared.headers.items()
                      if key not in ('Authorization', 'Connection'))
    bc_req = botocore.awsrequest.AWSRequest(method='PUT', url=url,
                                            headers=bc_headers)
    botocore.auth.SigV4Auth(_credentials(), 'ebs', 'us-east-1').add_auth(
        bc_req)
    assert prepared.headers['Authorization'] == \
        bc_req.headers['Authorization'], _botocore_logged(
            caplog, 'CanonicalRequest')
    assert 'x-amz-checksum;' in prepared.headers['Authorization']


# ------------------------------------------- object keys, as botocore writes

KEY_ENDPOINT = 'http://127.0.0.1:8773'
KEY_BUCKET = 'store-bucket'
# (method, botocore's operation, whether it names the key in the path (else
# in a listing's prefix), whether it has a body)
KEY_OPERATIONS = [
    pytest.param('PUT', 'PutObject', True, True, id='put'),
    pytest.param('GET', 'GetObject', True, False, id='get'),
    pytest.param('HEAD', 'HeadObject', True, False, id='head'),
    pytest.param('DELETE', 'DeleteObject', True, False, id='delete'),
    pytest.param('GET', 'ListObjects', False, False, id='list'),
]


def _key_requests(operation, in_path, key):
    """
    (our URL, botocore's URL) for ``operation`` on ``key``: ours as
    eustore_plugin.cloud.client.Cloud builds it (urlkeys.s3_path),
    botocore's from its own S3 model and serializer, the oracle.
    """
    model = botocore.session.get_session().get_service_model('s3')
    params = {'Bucket': KEY_BUCKET}
    params['Key' if in_path else 'Prefix'] = key
    serialized = botocore.serialize.create_serializer(
        'rest-xml', include_validation=False).serialize_to_request(
            params, model.operation_model(operation))
    botocore.awsrequest.prepare_request_dict(serialized, KEY_ENDPOINT)
    ours = s3_path(KEY_BUCKET, key) if in_path else \
        s3_path(KEY_BUCKET, params={'prefix': key})
    return KEY_ENDPOINT + '/' + ours, serialized['url']


@needs_botocore
@pytest.mark.parametrize('key', KEY_PARAMS)
@pytest.mark.parametrize('method,operation,in_path,has_body', KEY_OPERATIONS)
@pytest.mark.parametrize('signer', ['v4', 'hmac-v1'])
def test_object_keys_are_signed_as_botocore_does(
        frozen_clock, caplog, signer, method, operation, in_path, has_body,
        key):
    url, bc_url = _key_requests(operation, in_path, key)
    # The key is written on the wire as botocore writes it, in the path or
    # in the query.
    assert url == bc_url
    if signer == 'v4':
        signed = _sign_v4(caplog, method, url, 's3', headers=S3_HEADERS if
                          has_body else None, data=PUT_BODY if has_body
                          else None, bc_url=bc_url)
        assert signed['prepared'].url == url  # sent as built
        _assert_same_v4(signed)
    else:
        signed = _sign_hmac_v1(caplog, method, url, KEY_ENDPOINT,
                               PUT_HEADERS if has_body else None,
                               PUT_BODY if has_body else None, bc_url=bc_url)
        assert signed['our_resource'] == signed['botocore_full_resource']
        assert signed['ours'] == signed['botocore']


# ------------------------------------------------ the tests can fail at all

@needs_botocore
def test_wrong_secret_gives_a_different_signature(frozen_clock, caplog):
    url = 'http://s3.example.com/bucket/centos-7.img'
    right = _sign_hmac_v1(caplog, 'PUT', url, 'http://s3.example.com',
                          PUT_HEADERS, PUT_BODY)
    wrong = _sign_hmac_v1(caplog, 'PUT', url, 'http://s3.example.com',
                          PUT_HEADERS, PUT_BODY, secret=WRONG_SECRET)
    assert right['ours'] == right['botocore'] == wrong['botocore']
    assert wrong['ours'] != wrong['botocore']
    assert wrong['our_sts'] == wrong['botocore_sts']  # only the key differs

    params = dict(V2_REGISTER_IMAGE, Name='centos')
    wrong = _sign_query_v2(caplog, 'POST', params, secret=WRONG_SECRET)
    assert wrong['our_sts'] == wrong['botocore_sts']
    assert wrong['ours'] != wrong['botocore']

    wrong = _sign_v4(caplog, 'PUT', S3_URL, 's3', headers=S3_HEADERS,
                     data=PUT_BODY, secret=WRONG_SECRET)
    assert wrong['ours'] != wrong['botocore']
    # Same credential scope and signed headers; only the signature differs.
    assert wrong['ours'].split('Signature=')[0] == \
        wrong['botocore'].split('Signature=')[0]


# ----------------------------------------------------- the other fixes

DESCRIPTION = '''
    Install an image from an image store into the cloud that %(prog)s is configured for.  This line is long enough to be wrapped at seventy columns.

    The steps are:
      - download the image and check its checksum against the catalog's,
        which is long enough to wrap
      - bundle and upload it
      * register it

        $ %(prog)s -i 1234567890
    Indented less, so a paragraph of its own.
'''  # noqa: E501

# What requestbuilder's own re-wrapper makes of DESCRIPTION on Python 2.7.
REWRAPPED = '''\
Install an image from an image store into the cloud that eustore-frob
is configured for.  This line is long enough to be wrapped at seventy
columns.

The steps are:
  - download the image and check its checksum against the catalog's,
    which is long enough to wrap
  - bundle and upload it
  * register it

    $ eustore-frob -i 1234567890
Indented less, so a paragraph of its own.'''


def test_rewrap_description(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['/usr/bin/eustore-frob', '--help'])
    assert requestbuilder.command._rewrap_description(DESCRIPTION) == \
        REWRAPPED
    if six.PY3:
        assert requestbuilder.command._rewrap_description is \
            compat.rewrap_description


def test_command_with_description_builds_help(monkeypatch):
    from requestbuilder import Arg
    from requestbuilder.command import BaseCommand

    class FrobCommand(BaseCommand):
        DESCRIPTION = DESCRIPTION
        ARGS = [Arg('-n', '--name', help='name of the image to frob')]

    monkeypatch.setattr(sys, 'argv', ['/usr/bin/eustore-frob'])
    cmd = FrobCommand(name='centos')
    assert cmd.args['name'] == 'centos'
    text = cmd._cli_parser.format_help()
    assert REWRAPPED in text
    assert '--name NAME' in text
    assert 'name of the image to frob' in text


def _query_request():
    from requestbuilder.request import AWSQueryRequest

    # flatten_params uses nothing of the instance but itself.
    return AWSQueryRequest.__new__(AWSQueryRequest)


def test_flatten_params(tmpdir):
    from requestbuilder import EMPTY
    path = tmpdir.join('user-data')
    path.write_binary(b'#!/bin/sh\necho hi\n')
    with open(str(path)) as user_data:
        flat = _query_request().flatten_params({
            'ImageId': 'emi-12345678',
            'Monitoring': {'Enabled': True},
            'EbsOptimized': False,
            'MinCount': 0,
            'Price': 0.5,
            'Skipped': None,
            'Blank': EMPTY,
            'UserData': user_data,
            'SecurityGroup': ['default', 'web'],
            'Filter': [{'Name': 'image-id', 'Value': ['emi-1', 'emi-2']},
                       {'Name': 'is-public', 'Value': [True]}],
            'File': [user_data],
        })
    assert flat == {
        'ImageId': 'emi-12345678',
        'Monitoring.Enabled': 'true',
        'EbsOptimized': 'false',
        'MinCount': '0',
        'Price': '0.5',
        'Blank': '',
        'UserData': '#!/bin/sh\necho hi\n',
        'SecurityGroup.1': 'default',
        'SecurityGroup.2': 'web',
        'Filter.1.Name': 'image-id',
        'Filter.1.Value.1': 'emi-1',
        'Filter.1.Value.2': 'emi-2',
        'Filter.2.Name': 'is-public',
        'Filter.2.Value.1': 'true',
        'File.1': '',  # the same file, already read to its end
    }
    if six.PY3:
        assert requestbuilder.request.file is io.IOBase
        assert requestbuilder.service.file is io.IOBase


def test_iterator_file_obj_adapter_reads_bytes():
    adapter = requestbuilder.request._IteratorFileObjAdapter(
        iter([b'abc', b'defg', b'', b'hij', b'k']))
    assert adapter.read(2) == b'ab'
    assert adapter.read(5) == b'cdefg'  # across a chunk boundary
    assert adapter.read(0) == b''
    assert adapter.read(1) == b'h'
    chunk = adapter.read(10)  # more than is left
    assert chunk == b'ijk' and isinstance(chunk, six.binary_type)
    assert adapter.read(3) == b''
    assert adapter.read() == b''

    adapter = requestbuilder.request._IteratorFileObjAdapter(
        iter([b'abc', b'def']))
    assert adapter.read(4) == b'abcd'
    assert adapter.read() == b'ef'  # the rest, buffered part first
    adapter.close()
    assert adapter.closed


def test_read_logging_wrapper_returns_bytes(caplog):
    logger = logging.getLogger('test_compat.wire')
    caplog.set_level(logging.DEBUG, logger=logger.name)
    wrapper = requestbuilder.request._ReadLoggingFileWrapper(
        io.BytesIO(u'caf\xe9 au lait'.encode('utf-8')), logger,
        logging.DEBUG)
    assert wrapper.read(5) == u'caf\xe9'.encode('utf-8')
    assert wrapper.read() == b' au lait'
    if six.PY3:
        assert [r.getMessage() for r in caplog.records
                if r.name == logger.name] == [u'caf\xe9', ' au lait']


def test_service_collections_has_mapping():
    mapping = requestbuilder.service.collections.Mapping
    assert isinstance({}, mapping)
    assert isinstance(requests.structures.CaseInsensitiveDict(), mapping)


CONFIG = u'''\
[global]
default-region = r

[region r]
ec2-url = http://10.0.0.1:8773/services/compute
user = u

[region other:r2]
s3-url = http://s3.example.com/

[user u]
key-id = AKIDEXAMPLE
secret-key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
'''


def test_config_data_parses_region_and_user_sections(tmpdir):
    path = tmpdir.join('euca2ools.ini')
    path.write_text(CONFIG, 'utf-8')
    data = requestbuilder.config.ConfigData([str(path)])
    assert data.globals == {'default-region': 'r'}
    assert data.regions['r']['ec2-url'] == \
        'http://10.0.0.1:8773/services/compute'
    assert data.regions['r']['name'] == 'r'
    assert data.regions['other:r2']['name'] == 'r2'
    assert data.users['u']['key-id'] == KEY_ID
    view = requestbuilder.config.ConfigView(data, region='r', user='u')
    assert view.get_global_option('default-region') == 'r'
    assert view.get_region_option('user') == 'u'
    assert view.get_user_option('secret-key') == SECRET
    assert view.get_region_option('s3-url', region='r2') == \
        'http://s3.example.com/'


def _patched_state():
    import six.moves.configparser as configparser
    return {
        'rewrap': requestbuilder.command._rewrap_description,
        'v1': dict(vars(rb_aws.HmacV1Auth)),
        'v2': dict(vars(rb_aws.QueryHmacV2Auth)),
        'v4': dict(vars(rb_aws.HmacV4Auth)),
        'params_from_url': rb_aws._get_params_from_url,
        'service': (requestbuilder.service.__dict__.get('file'),
                    requestbuilder.service.collections),
        'request_file': requestbuilder.request.__dict__.get('file'),
        'adapter': dict(vars(requestbuilder.request._IteratorFileObjAdapter)),
        'logwrapper': dict(vars(
            requestbuilder.request._ReadLoggingFileWrapper)),
        'configparser': getattr(configparser, 'SafeConfigParser', None),
        'root_logger': requestbuilder.command.configure_root_logger,
    }


def test_install_is_idempotent():
    before = _patched_state()
    compat.install()
    compat.install()
    assert _patched_state() == before
    assert compat._INSTALLED == [True]
    # The signers are replaced everywhere; porting fixes only on Python 3.
    # vars(): Python 2 wraps class attributes in unbound methods.
    assert vars(rb_aws.HmacV1Auth)['sign_string'] is \
        compat.hmac_v1_sign_string
    assert vars(rb_aws.HmacV4Auth)['_hash_payload'] is \
        compat.v4_hash_payload
    assert (requestbuilder.command._rewrap_description is
            compat.rewrap_description) == six.PY3


# ------------------------------------------------------------ debug output

# What requestbuilder logs under --debug, and what may be shown of it.
DEBUG_LINES = [
    ('request  header: Authorization: AWS4-HMAC-SHA256 Credential=AKID/'
     '20150830/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, '
     'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5'
     'd7', 'request  header: Authorization: AWS4-HMAC-SHA256 Credential=AKID/'
     '20150830/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, '
     'Signature=<redacted>'),
    ('request  header: Authorization: AWS AKID:frJIUN8DYpKDtOLCwo//yllqDzg=',
     'request  header: Authorization: AWS AKID:<redacted>'),
    ('request  url:    http://s3/b/k?X-Amz-Credential=AKID%2F20150830&'
     'X-Amz-Signature=aa11&X-Amz-Security-Token=tok%2B', 'request  url:    '
     'http://s3/b/k?X-Amz-Credential=AKID%2F20150830&X-Amz-Signature='
     '<redacted>&X-Amz-Security-Token=<redacted>'),
    ('request  url:    http://ec2/?Action=DescribeImages&Signature=ab%2Bc&'
     'SignatureMethod=HmacSHA256&SignatureVersion=2', 'request  url:    '
     'http://ec2/?Action=DescribeImages&Signature=<redacted>&SignatureMethod='
     'HmacSHA256&SignatureVersion=2'),
    ('request  param:  Signature: ab+c/d=', 'request  param:  Signature: '
     '<redacted>'),
    ('request  data:   Signature: ab+c/d=', 'request  data:   Signature: '
     '<redacted>'),
    ('request  data:   SignatureMethod: HmacSHA256',
     'request  data:   SignatureMethod: HmacSHA256'),
    ('request  header: X-Amz-Security-Token: FQoGZXIvYXdzE//token',
     'request  header: X-Amz-Security-Token: <redacted>'),
    ("parsed arguments from CLI: {'key_id': 'AKID', 'secret_key': "
     "'wJalr/K7MDENG', 'security_token': u'tok'}", "parsed arguments from "
     "CLI: {'key_id': 'AKID', 'secret_key': '<redacted>', 'security_token': "
     "u'<redacted>'}"),
    ("canonical request: 'GET\\n/b/k\\n\\nhost:s3\\n\\nhost\\nUNSIGNED'",
     "canonical request: 'GET\\n/b/k\\n\\nhost:s3\\n\\nhost\\nUNSIGNED'"),
]


@pytest.mark.parametrize('line,shown', DEBUG_LINES)
def test_secrets_are_redacted_from_debug_lines(line, shown):
    assert compat.redact_secrets(line) == shown


def test_the_root_loggers_handler_redacts(capsys):
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    requestbuilder.command.configure_root_logger()
    try:
        (handler,) = [added for added in root.handlers if added not in before]
        log = logging.getLogger('EC2')
        log.setLevel(logging.DEBUG)
        log.debug('request  header: %s: %s', 'Authorization',
                  'AWS AKID:frJIUN8DYpKDtOLCwo//yllqDzg=')
        log.debug('request  param:  %s: %s', 'Action', 'RegisterImage')
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(' EC2 ', 1)[1] for line in lines] == [
        'request  header: Authorization: AWS AKID:<redacted>',
        'request  param:  Action: RegisterImage']
