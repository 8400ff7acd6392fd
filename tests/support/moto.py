# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A real cloud on loopback for the tests: moto's server (S3, EC2 and IAM on one
port) with signature checking on.  moto runs only on Python 3, but it is a
separate process spoken to over HTTP, so the Python 2.7 leg uses it too.
"""

from __future__ import absolute_import

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import requests
from six.moves import BaseHTTPServer
from six.moves.urllib.parse import parse_qsl, urlencode

from tests.support.http import LoopbackHTTPServer
from tests.support.rgw import free_port

try:
    from shutil import which
except ImportError:  # Python 2.7
    from distutils.spawn import find_executable as which


REGION = 'us-east-1'  # moto answers 500 to unknown regions in SigV4 scopes
ALLOW_ALL = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
             '"Action": "*", "Resource": "*"}]}')
# Before it checks signatures moto still needs to see which service a
# request is for: it reads that from the credential scope.
_BOOTSTRAP_AUTH = ('AWS4-HMAC-SHA256 Credential=bootstrap/20260101/{0}/iam/'
                   'aws4_request, SignedHeaders=host, Signature=0'
                   .format(REGION))
_BOOTSTRAP_CALLS = 3


def find_moto_server():
    """$MOTO_SERVER, else the one beside this Python, else one on PATH."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)),
                          'moto_server')
    return os.environ.get('MOTO_SERVER') or \
        (beside if os.path.isfile(beside) else which('moto_server'))


class MotoCloud(object):
    """
    moto_server in a child process, with an all-powerful IAM user.  It
    checks SigV4 signatures unless told not to: it cannot read HMAC-V1 ones
    (euca2ools signs S3 requests that way), it fails on them.
    """

    def __init__(self, executable, check_signatures=True):
        self.port = free_port()
        self.url = 'http://127.0.0.1:{0}/'.format(self.port)
        self.s3_url = self.url  # one port for every service
        env = dict(os.environ)
        if check_signatures:
            env['INITIAL_NO_AUTH_ACTION_COUNT'] = str(_BOOTSTRAP_CALLS)
        # A pyenv shim must not pick up the Python 2.7 leg's interpreter.
        env.pop('PYENV_VERSION', None)
        # Its log (a line per request) goes to a file: a pipe nobody reads
        # fills up, and then moto blocks mid-request, for good.
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [executable, '-H', '127.0.0.1', '-p', str(self.port)], env=env,
            stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_until_up()
        self.key_id, self.secret_key = self._create_admin()

    def _wait_until_up(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self._proc.poll() is not None:
                self._log.seek(0)
                raise RuntimeError('moto_server exited: {0}'.format(
                    self._log.read().decode('utf-8', 'replace')))
            try:
                requests.get(self.url + 'moto-api/', timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError('moto_server did not start within 30 s')

    def _iam(self, **params):
        params['Version'] = '2010-05-08'
        response = requests.post(self.url, data=urlencode(params), headers={
            'Authorization': _BOOTSTRAP_AUTH,
            'Content-Type': 'application/x-www-form-urlencoded'})
        response.raise_for_status()
        return response.text

    def _create_admin(self):
        self._iam(Action='CreateUser', UserName='admin')
        self._iam(Action='PutUserPolicy', UserName='admin',
                  PolicyName='all', PolicyDocument=ALLOW_ALL)
        answer = self._iam(Action='CreateAccessKey', UserName='admin')
        return (re.search('<AccessKeyId>(.*?)</AccessKeyId>', answer).group(1),
                re.search('<SecretAccessKey>(.*?)</SecretAccessKey>',
                          answer).group(1))

    def stop(self):
        self._proc.terminate()
        self._proc.wait()
        self._log.close()


class CloudProxy(object):
    """
    A loopback HTTP proxy in front of the cloud that records every request
    and can answer chosen ones itself, to show how the tools meet faults a
    real cloud has (a 500 from S3, a refused RegisterImage).  ``url`` leads
    to ``target_url``; ``s3_url`` to ``s3_target_url`` when given (an S3
    apart from the cloud's EC2: Ceph RGW), else it is ``url``.  Requests
    to both are recorded in one list, in the order they came.

    ``faults`` is a list of what :meth:`fail` is given; a matching request
    is answered with an AWS-style error ``status`` (and ``code``, or
    ``answer``: (content type, body)) that many ``times``, after the cloud
    has done it when ``landed`` (an answer lost on the way back).
    ``requests`` holds (method, path, body).
    """

    def __init__(self, target_url, s3_target_url=None):
        self.faults = []
        self.stopping = threading.Event()
        self.shortened = []
        self.holds = []
        self.requests = []
        self.headers = []  # of each request, in the same order
        self._servers = []
        self.url = self._serve(target_url)
        self.s3_url = self._serve(s3_target_url) if s3_target_url and \
            s3_target_url != target_url else self.url

    def _serve(self, target_url):
        """A listening port of the proxy's, leading to ``target_url``."""
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy
            target = target_url.rstrip('/')

        httpd = LoopbackHTTPServer.on_a_fresh_port('127.0.0.1', Handler)
        # Polled often: a test's teardown waits a poll for each server.
        thread = threading.Thread(target=httpd.serve_forever,
                                  kwargs={'poll_interval': 0.05})
        thread.daemon = True
        thread.start()
        self._servers.append(httpd)
        return 'http://127.0.0.1:{0}/'.format(httpd.server_address[1])

    def fail(self, predicate, status=500, times=1, landed=False,
             with_headers=False, code='Injected', then_hang=False,
             answer=None):
        """
        Answer requests ``predicate(method, path, body)`` picks (given the
        headers too, a dict, with ``with_headers``) with an error: AWS's
        XML with ``code``, or ``answer`` ((content type, body)) as it is;
        ``then_hang``: leave the next request on the same connection
        unanswered, as Ceph RGW was seen to after refusing a canned ACL.
        """
        self.faults.append(dict(
            predicate=predicate, status=status, times=times, landed=landed,
            with_headers=with_headers, code=code, then_hang=then_hang,
            answer=answer))

    def shorten(self, predicate, cut, times=1):
        """
        Store the body of a matching PUT without its last ``cut`` bytes,
        and answer with the ETag of the whole body, as if the object had
        arrived whole: what a client that uploaded a part file before it
        was fully written (euca2ools 3.4's race) leaves in S3 unknowingly.
        """
        self.shortened.append([predicate, cut, times])

    def hold(self, predicate):
        """
        Hold the next request matching ``predicate(method, path, body)``
        until the test releases it (see :class:`HeldRequest`): a cloud that
        is slow to answer exactly when the test wants it to be.
        """
        held = HeldRequest(predicate)
        self.holds.append(held)
        return held

    def form_requests(self, action):
        """The decoded form parameters of every EC2/IAM ``action`` call."""
        found = []
        for method, _, body in self.requests:
            params = dict(parse_qsl(body.decode('utf-8'),
                                    keep_blank_values=True)) \
                if method == 'POST' else {}
            if params.get('Action') == action:
                found.append(params)
        return found

    def stop(self):
        self.stopping.set()
        for held in self.holds:
            held.release(forward=False)
        for httpd in self._servers:
            httpd.shutdown()
            httpd.server_close()


class HeldRequest(object):
    """
    A request the proxy holds: ``arrived`` is set when it comes in;
    ``release()`` sends it on to the cloud, ``release(forward=False)``
    drops it unanswered (it never reaches the cloud).
    """

    def __init__(self, predicate):
        self.predicate = predicate
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.forward = True

    def release(self, forward=True):
        self.forward = forward
        self.released.set()


class _ProxyHandler(BaseHTTPServer.BaseHTTPRequestHandler):
    owner = None
    target = None  # the URL requests go on to
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        owner = self.owner
        owner.requests.append((self.command, self.path, body))
        owner.headers.append(dict(self.headers.items()))
        if getattr(self, 'hang', False):
            owner.stopping.wait(120)
            self.close_connection = True
            return
        for held in owner.holds:
            if not held.arrived.is_set() and \
                    held.predicate(self.command, self.path, body):
                held.arrived.set()
                held.released.wait(120)
                if not held.forward:
                    # Dropped unanswered, never reaching the cloud.
                    self.close_connection = True
                    return
                break
        for fault in owner.faults:
            asked = (self.command, self.path, body) + \
                ((dict(self.headers.items()),) if fault['with_headers']
                 else ())
            if fault['times'] > 0 and fault['predicate'](*asked):
                fault['times'] -= 1
                if fault['landed']:
                    self._forward(body)
                self.hang = fault['then_hang']
                content_type, error = fault['answer'] or (
                    'application/xml',
                    ('<Error><Code>{0}</Code><Message>fault injected by the '
                     'test</Message></Error>'.format(fault['code'])).encode())
                self.send_response(fault['status'])
                self.send_header('Content-Type', content_type)
                self.send_header('Content-Length', str(len(error)))
                self.end_headers()
                self.wfile.write(error)
                return
        etag = None
        for shortening in owner.shortened:
            predicate, cut, times = shortening
            if times > 0 and predicate(self.command, self.path, body):
                shortening[2] -= 1
                etag = '"{0}"'.format(hashlib.md5(body).hexdigest())
                body = body[:-cut]
        answer = self._forward(body)
        try:
            self._answer(answer, etag)
        except (IOError, OSError):
            # The client is gone (a process a test killed): nobody to tell.
            self.close_connection = True

    def _answer(self, answer, etag):
        content = answer.content
        self.send_response(answer.status_code)
        for key, val in answer.headers.items():
            if key.lower() == 'etag' and etag:
                val = etag
            if key.lower() not in ('content-length', 'transfer-encoding',
                                   'connection', 'content-encoding'):
                self.send_header(key, val)
        # A HEAD's answer has no body but the length of the one a GET has.
        length = answer.headers.get('Content-Length', '0') \
            if self.command == 'HEAD' else str(len(content))
        self.send_header('Content-Length', length)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(content)

    def _forward(self, body):
        # As signed: the Host header is the one the client signed (and the
        # length is the body's: an unchecked moto takes a shortened body
        # signed for more).
        headers = dict((key, val) for key, val in self.headers.items()
                       if key.lower() not in ('connection',
                                              'transfer-encoding',
                                              'content-length'))
        return requests.request(self.command, self.target + self.path,
                                headers=headers, data=body,
                                allow_redirects=False, stream=False)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def bucket_is_gone(cloud, bucket):
    """Whether the cloud (a Cloud) says it has no such bucket (404)."""
    from eustore_plugin.cloud.services import CloudError
    try:
        cloud.list_keys(bucket)
    except CloudError as err:
        return err.status_code == 404
    return False


def direct_cloud(cloud, url=None, s3_url=None):
    """eustore_plugin's Cloud on the test cloud itself, to look and tidy
    (or on ``url``, a CloudProxy in front of it; S3 on ``s3_url``, else
    ``url``, else the cloud's own S3)."""
    import logging

    from requestbuilder.config import ConfigData, ConfigView

    from eustore_plugin.cloud.auth import CloudAuth
    from eustore_plugin.cloud.client import Cloud
    from eustore_plugin.cloud.services import EC2, IAM, S3
    config = ConfigView(ConfigData([]))
    urls = {EC2: url or cloud.url, S3: s3_url or url or cloud.s3_url,
            IAM: url or cloud.url}
    services = []
    for service_cls in (EC2, S3, IAM):
        service = service_cls(config, loglevel=logging.CRITICAL,
                              url='{0}::{1}'.format(REGION,
                                                    urls[service_cls]))
        service.configure()
        services.append(service)
    auth = CloudAuth(config, loglevel=logging.CRITICAL, key_id=cloud.key_id,
                     secret_key=cloud.secret_key)
    auth.configure()
    return Cloud(*(services + [auth]))
