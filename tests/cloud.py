# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A real cloud on loopback for the tests: moto's server (S3, EC2 and IAM on one
port) with signature checking on.  moto runs only on Python 3, but it is a
separate process spoken to over HTTP, so the Python 2.7 leg uses it too.
"""

from __future__ import absolute_import

import os
import re
import socket
import subprocess
import time

import requests
from six.moves.urllib.parse import urlencode

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
    return os.environ.get('MOTO_SERVER') or which('moto_server')


def _free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class MotoCloud(object):
    """moto_server in a child process, with an all-powerful IAM user."""

    def __init__(self, executable):
        self.port = _free_port()
        self.url = 'http://127.0.0.1:{0}/'.format(self.port)
        env = dict(os.environ,
                   INITIAL_NO_AUTH_ACTION_COUNT=str(_BOOTSTRAP_CALLS))
        # A pyenv shim must not pick up the Python 2.7 leg's interpreter.
        env.pop('PYENV_VERSION', None)
        self._proc = subprocess.Popen(
            [executable, '-H', '127.0.0.1', '-p', str(self.port)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._wait_until_up()
        self.key_id, self.secret_key = self._create_admin()

    def _wait_until_up(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError('moto_server exited: {0}'.format(
                    self._proc.stdout.read()))
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
        self._proc.stdout.close()
