# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import os
import os.path
import uuid

import pytest

from tests.support.commands import clean_env, run_command
from tests.support.demostore import METADATA, TARBALLS, write_demo_store
from tests.support.http import StoreServer
from tests.support.install import eucarc_env, install_options, set_admin
from tests.support.moto import REGION, CloudProxy, direct_cloud
from tests.support.publicstores import BuilderIndex, Mirror
from tests.support.rgw import S3_SERVERS, s3_under_test


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'smoke: the few tests run on every Python found (the '
        'installed commands start, list a catalog and install an image)')
    if s3_under_test() not in S3_SERVERS:
        raise pytest.UsageError('EUSTORE_TEST_S3={0}: the S3 to test on is '
                                'one of {1}'.format(s3_under_test(),
                                                    ', '.join(S3_SERVERS)))


def pytest_report_header(config):
    return 'S3 under test: {0} (EUSTORE_TEST_S3)'.format(s3_under_test())


def pytest_sessionstart(session):
    """
    With EUSTORE_TEST_INSTALLED naming the checkout, the package must come
    from an installation, not from it: the tests then prove what users get.
    """
    checkout = os.environ.get('EUSTORE_TEST_INSTALLED')
    if not checkout:
        return
    import eustore_plugin
    where = os.path.realpath(eustore_plugin.__file__)
    if where.startswith(os.path.join(os.path.realpath(checkout),
                                     'eustore_plugin') + os.sep):
        raise pytest.UsageError(
            'eustore_plugin was imported from the checkout ({0}), not from '
            'the installed package'.format(where))


@pytest.fixture
def user_env(tmpdir):
    """A user's environment with no eucarc and an empty ~/.euca."""
    return clean_env(str(tmpdir.mkdir('home')))


@pytest.fixture
def cli(user_env):
    """Run an eustore command as a user would, in a separate process."""
    def run(command, *args, **kwargs):
        env = dict(user_env, **kwargs.pop('env', {}))
        return run_command(command, args, env, **kwargs)
    return run


@pytest.fixture(scope='session')
def demo_store_dir(tmpdir_factory):
    """tests/support/demostore.py's store: a catalog and three tarballs."""
    store = str(tmpdir_factory.mktemp('demo').join('store'))
    write_demo_store(store)
    return store


@pytest.fixture
def store_dir(tmpdir):
    return tmpdir.mkdir('store')


@pytest.fixture
def store(store_dir):
    server = StoreServer(str(store_dir)).start()
    yield server
    server.stop()


def _start_moto(check_signatures):
    from tests.support.moto import MotoCloud, find_moto_server
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


@pytest.fixture(scope='session')
def rgw():
    """
    Ceph RGW on loopback (tests/support/rgw.py), for a run on it
    (EUSTORE_TEST_S3=rgw): such a run fails, saying why, when it cannot
    start; it is never skipped.
    """
    from tests.support.rgw import start_for_tests
    cluster = start_for_tests()
    yield cluster
    cluster.stop()


def on_rgw():
    """Whether this run's S3 is Ceph RGW (EUSTORE_TEST_S3=rgw)."""
    return s3_under_test() == 'rgw'


@pytest.fixture(scope='session')
def s3_cloud(request):
    """
    The S3 under test, checking signatures: moto's (``moto_cloud``), or
    Ceph RGW's, as a user of its own.
    """
    if on_rgw():
        from tests.support.rgw import RgwUser
        return RgwUser(request.getfixturevalue('rgw'), 'tester')
    return request.getfixturevalue('moto_cloud')


def _gpg_key(tmpdir_factory, name, email):
    from tests.support.gpg import GpgKey, missing_tools
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
def public_cloud(request):
    """
    The object storage of image stores: moto without signature checks (a
    store is read anonymously, and a signature-checking moto cannot serve
    an unsigned GET, even of a public-read object: it answers 500), or on
    RGW (which checks signatures and serves public-read objects to
    anyone) the store operator's user there.
    """
    if on_rgw():
        from tests.support.rgw import RgwUser
        yield RgwUser(request.getfixturevalue('rgw'), 'store-operator')
        return
    cloud = _start_moto(check_signatures=False)
    yield cloud
    cloud.stop()


@pytest.fixture(scope='session')
def install_cloud(request):
    """
    The cloud eustore-install-image installs into: ``moto_cloud``, unless
    euca2ools is importable.  Then the command uses euca2ools, which signs
    S3 uploads with HMAC-V1, a scheme moto cannot check, so the cloud is a
    moto that checks no signatures (tests/test_signing.py and
    tests/test_compat.py prove the signing on their own).  On RGW, its S3
    is RGW's (which checks HMAC-V1 too) with the same keys as its EC2,
    ``moto_cloud``'s.
    """
    from eustore_plugin.suite import uses_euca2ools
    if on_rgw():
        from tests.support.rgw import CloudWithS3, RgwUser
        ec2 = request.getfixturevalue('moto_cloud')
        yield CloudWithS3(ec2, RgwUser(request.getfixturevalue('rgw'),
                                       'installer', ec2.key_id,
                                       ec2.secret_key).url)
        return
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
def operator(cli, user_env, public_cloud, operator_s3, signing_key,
             store_bucket, demo_store_dir):
    """Run a store command as the store's operator, with a eucarc."""
    env = {'S3_URL': operator_s3.url, 'AWS_DEFAULT_REGION': REGION,
           'AWS_AUTH_REGION': REGION,
           'AWS_ACCESS_KEY_ID': public_cloud.key_id,
           'AWS_SECRET_ACCESS_KEY': public_cloud.secret_key,
           'GNUPGHOME': signing_key.home}

    def run(command, *args, **kwargs):
        return cli(command, *(list(args) + ['-b', store_bucket]),
                   env=dict(env, **kwargs.pop('env', {})), **kwargs)

    def publish_args(image, *extra, **kwargs):
        tarball = os.path.join(demo_store_dir, 'images', TARBALLS[image])
        sign = [] if kwargs.pop('unsigned', False) else \
            ['--sign-key', signing_key.fingerprint]
        return ['-t', tarball] + METADATA[image] + sign + list(extra)

    def publish(image, *extra, **kwargs):
        args = publish_args(image, *extra,
                            unsigned=kwargs.pop('unsigned', False))
        return run('eustore-publish-image', *args, **kwargs)

    def start(command, *args):
        """The command running on (tests/support/hostile.py's
        RunningCommand), to do something to it meanwhile."""
        from tests.support.hostile import RunningCommand
        return RunningCommand(command, list(args) + ['-b', store_bucket],
                              dict(user_env, **env))

    run.publish = publish
    run.publish_args = publish_args
    run.start = start
    return run


@pytest.fixture(scope='session')
def keys(tmpdir_factory):
    """A user's and a cloud's keys and certificates."""
    from tests.support.keys import KeyPair
    directory = str(tmpdir_factory.mktemp('keys'))
    return KeyPair(directory, 'user'), KeyPair(directory, 'cloud')


@pytest.fixture
def install_args(install_cloud):
    """The options every eustore-install-image into the install cloud
    needs (see tests/support/install.py's install_options)."""
    return install_options(install_cloud)


@pytest.fixture
def cloud(install_cloud):
    """The install cloud, spoken to directly (to look and to tidy)."""
    return direct_cloud(install_cloud)


@pytest.fixture
def proxy(install_cloud):
    """The install cloud behind a recording, fault-injecting proxy (its S3
    behind ``s3_url``)."""
    server = CloudProxy(install_cloud.url, install_cloud.s3_url)
    yield server
    server.stop()


@pytest.fixture
def admin(cloud):
    set_admin(cloud, True)


@pytest.fixture
def non_admin(cloud):
    set_admin(cloud, False)


# The public kinds of store (tests/support/publicstores.py), served on
# loopback, and a eucarc for installing from one.

@pytest.fixture(scope='session')
def mirror_dir(tmpdir_factory, signing_key):
    root = tmpdir_factory.mktemp('mirror')
    mirror = Mirror(str(root), signer=signing_key,
                    workdir=str(tmpdir_factory.mktemp('mirror-work')))
    mirror.dir = str(root)
    return mirror


def _serve(content):
    """A store server of what ``content`` wrote in its ``dir``."""
    server = StoreServer(content.dir).start()
    server.content = content
    return server


@pytest.fixture
def mirror(mirror_dir):
    server = _serve(mirror_dir)
    yield server
    server.stop()


@pytest.fixture(scope='session')
def builder_dir(tmpdir_factory, signing_key):
    root = tmpdir_factory.mktemp('builder')
    index = BuilderIndex(str(root), signer=signing_key)
    index.dir = str(root)
    return index


@pytest.fixture
def builder(builder_dir):
    server = _serve(builder_dir)
    yield server
    server.stop()


@pytest.fixture
def trusted(signing_key):
    return ['--trusted-key', signing_key.public_file]


@pytest.fixture
def env(install_cloud, proxy, keys):
    return lambda store_url: eucarc_env(install_cloud, proxy, keys,
                                        store_url)
