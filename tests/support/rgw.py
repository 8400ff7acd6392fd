# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Ceph's RADOS Gateway (RGW) on loopback: a second, production S3 for the
tests, from Debian's packages (radosgw, ceph-mon, ceph-osd, ceph-common).

:class:`RgwCluster` starts a one-node Ceph cluster in a scratch directory --
a monitor, one OSD keeping its objects in memory (memstore), and radosgw
with its beast front end on a free port -- with authentication between the
daemons off (only S3's own signatures are checked), and tears it down
again.  Everything it writes is under that directory; the daemons run in
the foreground as its children, and die with the process that started them
even if it is killed.  When the cluster cannot start, :class:`RgwUnavailable`
says why in one line (the packages missing, a daemon that exited, with the
end of its log).

``python -m tests.support.rgw`` starts one, times it, and stops it.
"""

from __future__ import absolute_import, print_function

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import requests

try:
    from shutil import which
except ImportError:  # Python 2.7
    from distutils.spawn import find_executable as which

# What the cluster needs, and the Debian package each comes from.
PROGRAMS = [('monmaptool', 'ceph-common'), ('ceph', 'ceph-common'),
            ('ceph-mon', 'ceph-mon'), ('ceph-osd', 'ceph-osd'),
            ('radosgw', 'radosgw'), ('radosgw-admin', 'radosgw')]
START_TIMEOUT = 180  # seconds, for the whole cluster
# radosgw takes 5 s to stop when asked; what it holds is thrown away anyway.
STOP_GRACE = 1

# A one-node cluster: no cephx between the daemons (the tests prove S3's
# signatures, not Ceph's own), objects in memory, one replica, few
# placement groups (the eight pools radosgw makes would pass the default
# limit of PGs per OSD at the default count), and quick monitor commits
# (radosgw makes its pools one commit at a time, a second each by
# default).  radosgw with auth "none" waits forever for a ticket unless
# its clients are told so too (``ms mon client mode``).
CONFIG = """\
[global]
fsid = {fsid}
mon host = 127.0.0.1:{mon_port}
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
paxos propose interval = 0.05
paxos min wait = 0.01
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
log file = {root}/log/$name.log
mon data = {root}/mon/$id
osd data = {root}/osd/$id
keyring = /dev/null

[client]
ms mon client mode = crc secure
auth client required = none

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {root}/rgw
"""


# The S3 servers the tests run on, chosen with EUSTORE_TEST_S3: moto
# (every leg), or Ceph RGW (noxfile.py's rgw leg).
S3_SERVERS = ('moto', 'rgw')
# Where the rgw fixture writes how the start went, for the leg's line in
# the test table (noxfile.py sets it).
REPORT_VARIABLE = 'EUSTORE_TEST_RGW_REPORT'


def s3_under_test():
    return os.environ.get('EUSTORE_TEST_S3') or 'moto'


class RgwUnavailable(Exception):
    """The cluster could not start; the message says why, in one line."""


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def missing_programs():
    """The packages of the programs not on PATH (empty: all there)."""
    return sorted(set(package for program, package in PROGRAMS
                      if not which(program)))


def _die_with_parent():
    """In the child: SIGTERM when the process that started it ends, so
    that a killed test run leaves no daemons behind (Linux only)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # another system: the fixtures' teardown stops them
        pass


def _environment():
    """The environment for Ceph's tools: the ceph CLI is Debian's Python
    3, which must not see a test leg's Python paths."""
    env = dict(os.environ)
    for name in ('PYTHONPATH', 'PYTHONHOME', 'PYENV_VERSION',
                 'VIRTUAL_ENV'):
        env.pop(name, None)
    env['LC_ALL'] = env['LANG'] = 'C.UTF-8'
    return env


class RgwCluster(object):
    """
    A one-node Ceph cluster with radosgw, started at construction.  ``url``
    is radosgw's S3 endpoint (path-style); :meth:`add_user` makes an S3
    user with the keys given; :meth:`stop` ends it all and removes its
    directory.  ``started_in`` is how many seconds the start took, and
    ``version`` radosgw's.
    """

    def __init__(self, memstore_bytes=4 * 1024 ** 3):
        missing = missing_programs()
        if missing:
            raise RgwUnavailable(
                'Ceph RGW cannot start: the Debian package{0} {1} {2} not '
                'installed (scripts/setup installs them)'.format(
                    's' if len(missing) > 1 else '', ', '.join(missing),
                    'are' if len(missing) > 1 else 'is'))
        started = time.time()
        # Short: UNIX sockets (the admin sockets) take 107 bytes of path.
        self.root = tempfile.mkdtemp(prefix='eustore-rgw-')
        self.conf = os.path.join(self.root, 'ceph.conf')
        self.mon_port, self.rgw_port = free_port(), free_port()
        self.url = 'http://127.0.0.1:{0}/'.format(self.rgw_port)
        self._daemons = []
        self._env = _environment()
        try:
            for directory in ('run', 'log', 'mon/a', 'osd/0', 'rgw'):
                os.makedirs(os.path.join(self.root, directory))
            with open(self.conf, 'w') as conf:
                conf.write(CONFIG.format(
                    fsid=uuid.uuid4(), root=self.root, mon_port=self.mon_port,
                    rgw_port=self.rgw_port, memstore_bytes=memstore_bytes))
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.time() - started
        self.version = self._run('radosgw', '--version').split('(')[0] \
            .replace('ceph version', '').strip()

    # ------------------------------------------------------------------

    def _run(self, *args, **kwargs):
        """A Ceph tool run to its end; its output, or RgwUnavailable."""
        command = list(args) + ['-c', self.conf]
        try:
            output = subprocess.check_output(
                command, stderr=subprocess.STDOUT, env=self._env,
                cwd=self.root, **kwargs)
        except subprocess.CalledProcessError as err:
            raise RgwUnavailable('Ceph RGW cannot start: {0} failed ({1}): '
                                 '{2}'.format(' '.join(args[:2]),
                                              err.returncode,
                                              _last_lines(err.output)))
        return output.decode('utf-8', 'replace')

    def _daemon(self, name, *args):
        log = open(os.path.join(self.root, 'log', name + '.out'), 'wb')
        process = subprocess.Popen(
            list(args) + ['-c', self.conf, '-f'], stdout=log,
            stderr=subprocess.STDOUT, env=self._env, cwd=self.root,
            preexec_fn=_die_with_parent)
        log.close()
        self._daemons.append((name, args[0], process))
        return process

    def _start(self):
        monmap = os.path.join(self.root, 'monmap')
        self._run('monmaptool', '--create', '--add', 'a',
                  '127.0.0.1:{0}'.format(self.mon_port), '--fsid',
                  self._config_value('fsid'), monmap)
        self._run('ceph-mon', '--mkfs', '-i', 'a', '--monmap', monmap)
        self._daemon('mon.a', 'ceph-mon', '-i', 'a')
        osd_uuid = str(uuid.uuid4())
        self._run('ceph', '--connect-timeout', '60', 'osd', 'new', osd_uuid)
        self._run('ceph-osd', '-i', '0', '--mkfs', '--osd-uuid', osd_uuid)
        self._daemon('osd.0', 'ceph-osd', '-i', '0')
        self._daemon('client.rgw.a', 'radosgw', '-n', 'client.rgw.a')
        self._wait_for_radosgw()

    def _config_value(self, name):
        with open(self.conf) as conf:
            for line in conf:
                key, _, value = line.partition('=')
                if key.strip() == name:
                    return value.strip()
        raise KeyError(name)

    def _wait_for_radosgw(self):
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            for name, program, process in self._daemons:
                if process.poll() is not None:
                    raise RgwUnavailable(
                        'Ceph RGW cannot start: {0} exited ({1}): {2}'.format(
                            program, process.returncode,
                            self.log_tail(name)))
            try:
                if requests.get(self.url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RgwUnavailable(
            'Ceph RGW cannot start: radosgw did not answer at {0} within {1} '
            's: {2}'.format(self.url, START_TIMEOUT,
                            self.log_tail('client.rgw.a')))

    def log_tail(self, name, lines=3):
        """The last lines of a daemon's log, on one line."""
        text = b''
        for suffix in ('.log', '.out'):
            try:
                with open(os.path.join(self.root, 'log', name + suffix),
                          'rb') as log:
                    text += log.read()
            except (IOError, OSError):
                pass
        return _last_lines(text, lines) or 'its log is empty'

    # ------------------------------------------------------------------

    def add_user(self, uid, key_id, secret_key):
        """An S3 user ``uid`` with these keys (any a test likes, e.g. those
        moto gave, so that one set of keys signs for both)."""
        self._run('radosgw-admin', '-n', 'client.admin', 'user', 'create',
                  '--uid', uid, '--display-name', uid, '--access-key',
                  key_id, '--secret-key', secret_key)

    def stop(self):
        """Stop the daemons (radosgw first) and remove the directory."""
        for _, _, process in reversed(self._daemons):
            if process.poll() is None:
                process.terminate()
        deadline = time.time() + STOP_GRACE
        for _, _, process in reversed(self._daemons):
            while process.poll() is None and time.time() < deadline:
                time.sleep(0.1)
            if process.poll() is None:
                process.kill()
                process.wait()
        self._daemons = []
        shutil.rmtree(self.root, ignore_errors=True)


class RgwUser(object):
    """
    An S3 user of a cluster, shaped like tests/support/moto.py's MotoCloud
    for the fixtures (``url``, ``s3_url``, ``key_id``, ``secret_key``):
    keys of its own unless given some.
    """

    def __init__(self, cluster, uid, key_id=None, secret_key=None):
        self.url = self.s3_url = cluster.url
        self.key_id = key_id or 'RGW' + uuid.uuid4().hex[:17].upper()
        self.secret_key = secret_key or uuid.uuid4().hex + uuid.uuid4().hex
        cluster.add_user(uid, self.key_id, self.secret_key)

    def stop(self):
        pass  # the cluster's fixture stops it


class CloudWithS3(object):
    """
    A cloud whose EC2 and IAM are ``cloud``'s (moto) and whose S3 is
    elsewhere (``s3_url``: RGW), with one set of keys for both, as a
    cloud with a separate S3 is set up in a eucarc.  ``bundle_acl`` is
    the canned ACL installs give bundles there: RGW refuses the default
    (aws-exec-read), and moto's EC2 reads no bundle.
    """

    bundle_acl = 'private'

    def __init__(self, cloud, s3_url):
        self.url, self.s3_url = cloud.url, s3_url
        self.key_id, self.secret_key = cloud.key_id, cloud.secret_key


def _last_lines(output, count=3):
    if isinstance(output, bytes):
        output = output.decode('utf-8', 'replace')
    lines = [line.strip() for line in (output or '').splitlines()
             if line.strip()]
    return ' | '.join(lines[-count:])


def start_for_tests():
    """
    A cluster for a test session; when it cannot start, the session's
    tests fail (pytest.fail) saying why.  Either way the outcome goes to
    the file $EUSTORE_TEST_RGW_REPORT names, if set.
    """
    import pytest
    try:
        cluster = RgwCluster()
    except RgwUnavailable as err:
        _report({'error': str(err)})
        pytest.fail(str(err), pytrace=False)
    _report({'version': cluster.version, 'started_in': cluster.started_in})
    return cluster


def _report(outcome):
    path = os.environ.get(REPORT_VARIABLE)
    if path:
        with open(path, 'w') as report:
            json.dump(outcome, report)


def main():
    try:
        cluster = RgwCluster()
    except RgwUnavailable as err:
        print(err, file=sys.stderr)
        return 1
    print('radosgw {0} at {1}, started in {2:.1f} s'.format(
        cluster.version, cluster.url, cluster.started_in))
    stopping = time.time()
    cluster.stop()
    print('stopped in {0:.1f} s'.format(time.time() - stopping))
    return 0


if __name__ == '__main__':
    sys.exit(main())
