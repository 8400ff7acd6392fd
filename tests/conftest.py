# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import os
import os.path
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.cloud import REGION, CloudProxy
from tests.storeserver import StoreServer


FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'scripts')
COMMANDS = {
    'eustore-describe-images':
        'eustore_plugin.commands.describeimages:DescribeImages',
    'eustore-install-image':
        'eustore_plugin.commands.installimage:InstallImage',
    'eustore-publish-image':
        'eustore_plugin.commands.publishimage:PublishImage',
    'eustore-withdraw-image':
        'eustore_plugin.commands.withdrawimage:WithdrawImage',
    'eustore-check-store':
        'eustore_plugin.commands.checkstore:CheckStore',
}
TARBALLS = {
    'centos': 'demo-centos-6.5-x86_64.tgz',
    'debian': 'demo-debian-7-i386.tgz',
    'fedora': 'demo-fedora-20-x86_64-hvm.tgz',
}
# How the demo store's images are published in the tests.
METADATA = {
    'centos': ['-i', 'centos-demo', '-s', 'CentOS demo', '-a', 'x86_64',
               '--os', 'centos', '--image-version', '6.5'],
    'debian': ['-i', 'debian-demo', '-s', 'Debian demo', '-a', 'i386',
               '--os', 'debian'],
    'fedora': ['-i', 'fedora-demo', '-s', 'Fedora demo', '-a', 'x86_64',
               '--os', 'fedora'],
}


# Variables a user's shell may carry that would leak into a test.
USER_VARIABLES = ('EUSTORE_URL', 'EUCA_CONFIG_PATH', 'EC2_URL', 'S3_URL',
                  'EUARE_URL', 'AWS_IAM_URL', 'TOKEN_URL', 'EC2_ACCESS_KEY',
                  'EC2_SECRET_KEY', 'AWS_ACCESS_KEY', 'AWS_SECRET_KEY',
                  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
                  'AWS_SECURITY_TOKEN', 'AWS_CREDENTIAL_FILE', 'EC2_CERT',
                  'EC2_PRIVATE_KEY', 'EUCALYPTUS_CERT', 'EC2_USER_ID',
                  'EUCA_DEFAULT_REGION', 'AWS_DEFAULT_REGION',
                  'REQUESTS_CA_BUNDLE', 'http_proxy', 'https_proxy',
                  'HTTP_PROXY', 'HTTPS_PROXY', 'XDG_CACHE_HOME', 'GNUPGHOME')


def fixture_path(name):
    return os.path.join(FIXTURES, name)


UNSIGNED_WARNING_END = ('is not signed, so the images it lists cannot be '
                        'verified')


class Result(object):
    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def lines(self):
        return self.stdout.splitlines()

    @property
    def messages(self):
        """
        The stderr lines, less the warning every unsigned store gets, for
        tests about something else.
        """
        return [line for line in self.stderr.splitlines()
                if not line.endswith(UNSIGNED_WARNING_END)]

    def __repr__(self):
        return 'Result(rc={0}, stdout={1!r}, stderr={2!r})'.format(
            self.returncode, self.stdout, self.stderr)


@pytest.fixture
def user_env(tmpdir):
    """A user's environment with no eucarc and an empty ~/.euca."""
    env = dict((key, val) for key, val in os.environ.items()
               if key not in USER_VARIABLES)
    env['HOME'] = str(tmpdir.mkdir('home'))
    env['EUCA_CONFIG_PATH'] = str(tmpdir.join('no-config', '*.ini'))
    env['NO_PROXY'] = env['no_proxy'] = '127.0.0.1,localhost'
    env['PYTHONIOENCODING'] = 'utf-8'
    return env


@pytest.fixture
def cli(user_env):
    """Run an eustore command as a user would, in a separate process."""
    def run(command, *args, **kwargs):
        module, cls = COMMANDS[command].split(':')
        code = ('import sys; sys.argv[0] = {0!r}; from {1} import {2}; '
                '{2}.run()'.format(command, module, cls))
        env = dict(user_env, **kwargs.pop('env', {}))
        proc = subprocess.Popen(
            [sys.executable, '-c', code] + list(args), env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=kwargs.pop('cwd', None))
        out, err = proc.communicate(kwargs.pop('input', b''))
        return Result(proc.returncode, out.decode('utf-8'),
                      err.decode('utf-8'))
    return run


@pytest.fixture(scope='session')
def demo_store_dir(tmpdir_factory):
    """scripts/make_demo_store.py's store: a catalog and three tarballs."""
    store = str(tmpdir_factory.mktemp('demo').join('store'))
    subprocess.check_call([sys.executable, os.path.join(
        SCRIPTS, 'make_demo_store.py'), store], stdout=subprocess.PIPE)
    return store


@pytest.fixture
def store_dir(tmpdir):
    return tmpdir.mkdir('store')


@pytest.fixture
def store(store_dir):
    server = StoreServer(str(store_dir)).start()
    yield server
    server.stop()


def put_catalog(store_dir, fixture, name='catalog'):
    shutil.copy(fixture_path(fixture), str(store_dir.join(name)))


def _start_moto(check_signatures):
    from tests.cloud import MotoCloud, find_moto_server
    executable = find_moto_server()
    if not executable:
        pytest.skip('moto_server not found: run scripts/setup (it installs '
                    'moto[server] on Python 3), or set MOTO_SERVER')
    return MotoCloud(executable, check_signatures=check_signatures)


@pytest.fixture(scope='session')
def moto_cloud():
    """moto's S3, EC2 and IAM on loopback, checking SigV4 signatures."""
    cloud = _start_moto(check_signatures=True)
    yield cloud
    cloud.stop()


def _gpg_key(tmpdir_factory, name, email):
    from tests.gpg_helpers import GpgKey, missing_tools
    if missing_tools():
        pytest.skip('gpg and gpgv are needed to sign and check catalogs: '
                    'run scripts/setup (it installs gnupg and gpgv)')
    directory = tmpdir_factory.mktemp('gpg')
    key = GpgKey(str(directory), name, email)
    # What a store's users are given to trust.
    key.public_file = key.export_armored(str(directory.join(
        email.split('@')[0] + '.asc')))
    return key


@pytest.fixture(scope='session')
def signing_key(tmpdir_factory):
    """The store operator's OpenPGP key (store@example.com)."""
    key = _gpg_key(tmpdir_factory, 'Store Operator', 'store@example.com')
    yield key
    key.close()


@pytest.fixture(scope='session')
def stranger_key(tmpdir_factory):
    """Somebody else's OpenPGP key."""
    key = _gpg_key(tmpdir_factory, 'Someone Else', 'else@example.com')
    yield key
    key.close()


@pytest.fixture(scope='session')
def public_cloud():
    """
    moto without signature checks: the object storage of image stores.  A
    store is read anonymously, and a signature-checking moto cannot serve
    an unsigned GET, even of a public-read object (it answers 500).
    """
    cloud = _start_moto(check_signatures=False)
    yield cloud
    cloud.stop()


@pytest.fixture(scope='session')
def install_cloud(request):
    """
    The cloud eustore-install-image installs into: ``moto_cloud``, unless
    euca2ools is importable.  Then the command uses euca2ools, which signs
    S3 uploads with HMAC-V1, a scheme moto cannot check, so the cloud is a
    moto that checks no signatures (tests/test_signing_moto.py and
    tests/test_compat.py prove the signing on their own).
    """
    from eustore_plugin.backend import uses_euca2ools
    if not uses_euca2ools():
        yield request.getfixturevalue('moto_cloud')
        return
    cloud = _start_moto(check_signatures=False)
    yield cloud
    cloud.stop()


@pytest.fixture
def operator_s3(public_cloud):
    """The operator's S3, through a proxy that records every request."""
    proxy = CloudProxy(public_cloud.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def store_bucket():
    """A new store's bucket name."""
    return 'store-' + uuid.uuid4().hex[:10]


@pytest.fixture
def store_url(public_cloud, store_bucket):
    """The store's public URL: its bucket, read anonymously."""
    return '{0}{1}/'.format(public_cloud.url, store_bucket)


@pytest.fixture
def operator(cli, public_cloud, operator_s3, signing_key, store_bucket,
             demo_store_dir):
    """Run a store command as the store's operator, with a eucarc."""
    env = {'S3_URL': operator_s3.url, 'AWS_DEFAULT_REGION': REGION,
           'AWS_AUTH_REGION': REGION,
           'AWS_ACCESS_KEY_ID': public_cloud.key_id,
           'AWS_SECRET_ACCESS_KEY': public_cloud.secret_key,
           'GNUPGHOME': signing_key.home}

    def run(command, *args, **kwargs):
        return cli(command, *(list(args) + ['-b', store_bucket]),
                   env=dict(env, **kwargs.pop('env', {})), **kwargs)

    def publish(image, *extra, **kwargs):
        tarball = os.path.join(demo_store_dir, 'images', TARBALLS[image])
        sign = [] if kwargs.pop('unsigned', False) else \
            ['--sign-key', signing_key.fingerprint]
        return run('eustore-publish-image',
                   *(['-t', tarball] + METADATA[image] + sign + list(extra)),
                   **kwargs)

    run.publish = publish
    return run
