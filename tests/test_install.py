# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-install-image end to end with real parts: the demo store on a
loopback HTTP server, moto's S3/EC2/IAM server (checking SigV4 signatures)
as the cloud behind a recording, fault-injecting loopback proxy, and the
installed bundles fetched back and decoded with openssl, gzip and tar.
"""

from __future__ import absolute_import

import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import textwrap
import threading
import time
import xml.etree.ElementTree as ElementTree

import pytest
from six.moves import shlex_quote

from eustore_plugin.cloud.services import CloudError, CreateTags
from eustore_plugin.suite import uses_euca2ools
from tests.support.bundles import openssl_decrypt_hex
from tests.support.commands import command_argv, finish_command, start_command
from tests.support.demostore import add_member, write_tarball
from tests.support.http import (ChangingFile, ReplacedFile, StoreServer,
                                cut_after, header, serve)
from tests.support.images import image_bytes
from tests.support.install import (ACCOUNT, INSTALL, INTERRUPTED_AND_UNDONE,
                                   eucarc, fetch_and_decode, install,
                                   installed_ids, store, tags_sent)
from tests.support.moto import REGION, bucket_is_gone, which
from tests.support.rgw import s3_under_test

# The install fixtures (tests/support/install.py), used here.
INSTALL_FIXTURES = (eucarc, install, store)


def tarball_bytes(store_dir, image):
    with open(os.path.join(store_dir, image['url']), 'rb') as tarball:
        return tarball.read()


def member_bytes(store_dir, image, suffix):
    with tarfile.open(os.path.join(store_dir, image['url'])) as tar:
        for member in tar.getmembers():
            if member.name.endswith(suffix):
                return tar.extractfile(member).read()
    raise AssertionError('no member ending in ' + suffix)


def test_single_kernel_image_installs_and_decodes(
        install_args, install, admin, proxy, cloud, keys, store,
        demo_store_dir, tmpdir):
    image = store.catalog['centos']
    result = install('-i', image['name'], '-b', 'centos-bundles',
                     '--pad-name')
    ids = installed_ids(result)
    assert sorted(ids) == ['image', 'kernel', 'ramdisk']

    kernel_call, ramdisk_call, machine_call = proxy.form_requests(
        'RegisterImage')
    name = machine_call['Name']
    # Named after the catalog entry (padded: --pad-name).
    assert re.match(r'^centos-x86_64-demo-[0-9a-f]{8}$', name), name
    assert kernel_call['Name'] == name + '-kernel'
    assert kernel_call['ImageLocation'] == \
        'centos-bundles/{0}.manifest.xml'.format(name + '-kernel')
    assert machine_call['KernelId'] == ids['kernel']
    assert machine_call['RamdiskId'] == ids['ramdisk']
    assert machine_call['Architecture'] == 'x86_64'
    assert machine_call['VirtualizationType'] == 'paravirtual'
    # The store's description, and (for clouds without tags) where the
    # image came from.
    assert machine_call['Description'] == '{0} [eustore: {1} {2} from {3}]' \
        .format(image['description'], image['name'], image['version'],
                store.url)
    assert tags_sent(proxy, ids['image']) == {
        'eustore:store': store.url, 'eustore:format': 'eustore',
        'eustore:image': image['name'], 'eustore:version': image['version'],
        'eustore:checksum': 'sha256:' + image['sha256'],
        'eustore:role': 'machine',
        'eustore:manifest': machine_call['ImageLocation'],
        'eustore:kernel-id': ids['kernel'],
        'eustore:ramdisk-id': ids['ramdisk']}
    assert tags_sent(proxy, ids['kernel'])['eustore:role'] == 'kernel'

    part_puts = [headers for (method, path, _), headers
                 in zip(proxy.requests, proxy.headers)
                 if method == 'PUT' and '.part.' in path]
    # The canned ACL Eucalyptus and EC2 read bundles by, unless --acl.
    acl = install_args[1] if install_args else 'aws-exec-read'
    assert part_puts and all(headers.get('x-amz-acl') == acl
                             for headers in part_puts)

    user, cloud_keys = keys
    machine = fetch_and_decode(cloud, 'centos-bundles',
                               name + '.manifest.xml', cloud_keys,
                               str(tmpdir.join('machine')))
    assert machine == member_bytes(demo_store_dir, image, '.img') or \
        machine == member_bytes(demo_store_dir, image, 'x86_64.img')
    kernel = fetch_and_decode(cloud, 'centos-bundles',
                              name + '-kernel.manifest.xml', cloud_keys,
                              str(tmpdir.join('kernel')))
    assert kernel == member_bytes(demo_store_dir, image,
                                  'vmlinuz-2.6.32-431.el6.x86_64')


def test_hypervisor_specific_image_needs_a_choice(install, admin, proxy,
                                                  cloud, keys, store,
                                                  demo_store_dir, tmpdir):
    image = store.catalog['debian']
    result = install('-i', image['name'], '-b', 'debian-bundles')
    assert result.returncode == 1
    assert 'choose one of: kvm, xen' in result.stderr
    assert not [req for req in proxy.requests if req[0] == 'PUT']

    ids = installed_ids(install('-i', image['name'], '-b', 'debian-bundles',
                                '--kernel-type', 'kvm', '--pad-name'))
    assert len(ids) == 3
    kernel_call = proxy.form_requests('RegisterImage')[0]
    kernel = fetch_and_decode(
        cloud, 'debian-bundles', kernel_call['ImageLocation'].split('/')[1],
        keys[1], str(tmpdir.join('kernel')))
    assert kernel == member_bytes(demo_store_dir, image,
                                  'kvm-kernel/vmlinuz-3.2.0-4-486')


@pytest.mark.smoke
def test_hvm_image_needs_no_kernel_nor_admin(install, non_admin, proxy,
                                             store):
    ids = installed_ids(install('-i', store.catalog['fedora']['name'], '-b',
                                'hvm-bundles', '--pad-name'))
    assert list(ids) == ['image']
    (call,) = proxy.form_requests('RegisterImage')
    assert call['VirtualizationType'] == 'hvm'
    assert 'KernelId' not in call
    assert not proxy.form_requests('ListAccountAliases')


def test_non_admin_is_refused_before_downloading(install, non_admin, store):
    image = store.catalog['centos']
    result = install('-i', image['name'], '-b', 'nope')
    assert result.returncode == 1
    assert '--kernel and --ramdisk' in result.stderr
    assert 'Traceback' not in result.stderr
    assert '/' + image['url'] not in store.paths_requested()


def test_existing_kernel_and_ramdisk_are_used(install, non_admin, proxy,
                                              store):
    ids = installed_ids(install(
        '-i', store.catalog['centos']['name'], '-b', 'reuse-bundles',
        '--kernel', 'eki-12345678', '--ramdisk', 'eri-12345678',
        '--pad-name'))
    assert list(ids) == ['image']
    (call,) = proxy.form_requests('RegisterImage')
    assert (call['KernelId'], call['RamdiskId']) == ('eki-12345678',
                                                     'eri-12345678')
    uploaded = [path for method, path, _ in proxy.requests
                if method == 'PUT']
    assert not [path for path in uploaded if 'kernel' in path]


def test_kernel_without_ramdisk_is_a_usage_error(install, store):
    result = install('-i', store.catalog['centos']['name'], '-b', 'xx-bucket',
                     '--kernel', 'eki-12345678')
    assert result.returncode != 0
    assert '--kernel and --ramdisk go together' in result.stderr


def test_already_installed_image_is_reused(install, admin, proxy, store):
    args = ('-i', store.catalog['fedora']['name'], '-b', 'again-bundles',
            '-p', 'fedora-again')
    first = installed_ids(install(*args))
    second = install(*args)
    assert second.returncode == 1
    assert 'already installed as ' + first['image'] in second.stderr
    assert '-y' in second.stderr
    third = install(*(args + ('-y',)))
    assert third.returncode == 0, third
    assert third.lines == ['Reused installed image ' + first['image']]
    assert len(proxy.form_requests('RegisterImage')) == 1


@pytest.mark.skipif(uses_euca2ools(), reason=(
    "euca2ools' PutObject sends parts through a wrapper that cannot be "
    "rewound, so euca2ools fails a part upload answered 500 (and the "
    "install rolls back) instead of retrying it"))
def test_s3_server_errors_are_retried(install, admin, proxy, store):
    proxy.fail(lambda method, path, body: method == 'PUT' and
               path.endswith('.part.00'), status=500, times=1)
    ids = installed_ids(install('-i', store.catalog['fedora']['name'], '-b',
                                'retry-bundles', '--pad-name'))
    assert list(ids) == ['image']
    part_puts = [path for method, path, _ in proxy.requests
                 if method == 'PUT' and path.endswith('.part.00')]
    assert len(part_puts) == 2 and part_puts[0] == part_puts[1]


def test_failed_registration_removes_everything(install, admin, proxy,
                                                cloud, store):
    def machine_registration(method, path, body):
        return b'Action=RegisterImage' in body and b'-kernel' not in body \
            and b'-ramdisk' not in body
    proxy.fail(machine_registration, status=400, times=1)
    result = install('-i', store.catalog['centos']['name'], '-b',
                     'rollback-bundles', '-p', 'rollback-centos')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert 'what this run uploaded or registered was removed' in \
        result.stderr
    assert len(proxy.form_requests('RegisterImage')) == 3
    # One line naming the service, as the plugin's own requests say it,
    # whichever backend sent it (euca2ools' errors are tuples).
    assert re.search(r'^eustore-install-image: error: EC2 at http://\S+ '
                     r'refused the request \(400 Injected: fault injected '
                     r'by the test\)', result.messages[-1]), result
    assert len(proxy.form_requests('DeregisterImage')) == 2
    for name in ('rollback-centos-kernel', 'rollback-centos-ramdisk',
                 'rollback-centos'):
        assert cloud.images_named(name) == []
    # The bucket was created by this run, so it is gone too.
    assert bucket_is_gone(cloud, 'rollback-bundles')
    # Nothing is in the way of a rerun.
    assert len(installed_ids(install('-i', store.catalog['centos']['name'],
                                     '-b', 'rollback-bundles', '-p',
                                     'rollback-centos'))) == 3


def test_an_upload_whose_answer_was_lost_is_removed_too(install, non_admin,
                                                        proxy, cloud, store):
    # The part is stored, but the answer says otherwise: it was written
    # down before it was sent, so the undo removes it (and then the bucket,
    # which could not go with the part still in it).
    proxy.fail(lambda method, path, body: method == 'PUT' and
               path.endswith('.part.00'), status=400, times=1, landed=True)
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'lost-answer-bundles', '--pad-name')
    assert result.returncode == 1
    assert result.messages[-1].endswith(
        '; what this run uploaded or registered was removed')
    assert re.search(r'error: S3 at http://\S+ refused the request \(400 '
                     r'Injected: ', result.messages[-1]), result
    assert not proxy.form_requests('RegisterImage')
    assert bucket_is_gone(cloud, 'lost-answer-bundles')


def test_tampered_tarball_is_refused_before_anything_is_uploaded(
        install, admin, proxy, demo_store_dir, tmpdir):
    store_copy = str(tmpdir.join('store'))
    shutil.copytree(demo_store_dir, store_copy)
    with open(os.path.join(store_copy, 'catalog')) as catalog:
        fedora = [image for image in json.load(catalog)['images']
                  if image['os'] == 'fedora'][0]
    with open(os.path.join(store_copy, fedora['url']), 'r+b') as tarball:
        tarball.seek(100)
        byte = tarball.read(1)
        tarball.seek(100)
        tarball.write(bytes(bytearray([ord(byte) ^ 0xff])))
    server = StoreServer(store_copy).start()
    try:
        result = install('-i', fedora['name'], '-b', 'tampered', '-U',
                         server.url)
    finally:
        server.stop()
    assert result.returncode == 1
    assert 'sha256 should be ' + fedora['sha256'] in result.stderr
    assert len(result.messages) == 1
    assert [path for method, path, _ in proxy.requests
            if method == 'PUT'] == []
    assert not proxy.form_requests('RegisterImage')


def test_local_tarball(install, non_admin, demo_store_dir, store):
    tarball = os.path.join(demo_store_dir, store.catalog['fedora']['url'])
    ids = installed_ids(install('-t', tarball, '-s', 'local Fedora', '-a',
                                'x86_64', '-b', 'local-bundles',
                                '--pad-name'))
    assert list(ids) == ['image']
    result = install('-t', tarball, '-b', 'local-bundles')
    assert result.returncode != 0
    assert '-t/--tarball needs -s/--description and -a/--architecture' in \
        result.stderr


def test_directory_keeps_the_tarball_for_a_rerun(install, non_admin, store,
                                                 tmpdir):
    image = store.catalog['fedora']
    keep = tmpdir.mkdir('keep')
    for _ in range(2):
        installed_ids(install('-i', image['name'], '-b', 'dir-bundles',
                              '-d', str(keep), '--pad-name'))
    # Everything in a directory of the tool's own: the tarball kept, the
    # runs' parts gone.
    assert os.listdir(str(keep)) == ['eustore-install']
    downloads = keep.join('eustore-install', 'downloads')
    (kept,) = os.listdir(str(downloads))
    assert kept.endswith('-' + os.path.basename(image['url']))
    assert os.listdir(str(keep.join('eustore-install', 'runs'))) == []
    assert store.paths_requested().count('/' + image['url']) == 1


def test_missing_credentials_name_their_sources(install, store, eucarc):
    result = install('-i', store.catalog['fedora']['name'], '-b', 'xx-bucket',
                     env={'EC2_CERT': '', 'EC2_USER_ID': ''})
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    for fragment in ('-c/--cert', 'EC2_CERT', '"certificate"',
                     '-u/--user', 'EC2_USER_ID', '"account-id"'):
        assert fragment in message
    result = install('-i', store.catalog['fedora']['name'], '-b', 'xx-bucket',
                     env={'AWS_ACCESS_KEY_ID': '',
                          'AWS_SECRET_ACCESS_KEY': ''})
    assert result.returncode == 1
    for fragment in ('-I', 'AWS_ACCESS_KEY_ID', 'EC2_ACCESS_KEY', '"key-id"'):
        assert fragment in result.stderr


def test_credentials_and_endpoints_from_euca2ools_config(
        install, install_cloud, non_admin, proxy, store, keys, tmpdir):
    user, cloud_keys = keys
    config = tmpdir.join('euca2ools.ini')
    config.write(textwrap.dedent('''
        [region {region}]
        ec2-url = {url}
        s3-url = {s3_url}
        iam-url = {url}
        certificate = {cloud_cert}
        eustore-url = {store}

        [user lab-admin]
        key-id = {key_id}
        secret-key = {secret}
        account-id = {account}
        certificate = {user_cert}
        private-key = {user_key}
        ''').format(region=REGION, url=proxy.url, s3_url=proxy.s3_url,
                    cloud_cert=cloud_keys.cert_path, store=store.url,
                    key_id=install_cloud.key_id,
                    secret=install_cloud.secret_key,
                    account=ACCOUNT, user_cert=user.cert_path,
                    user_key=user.key_path))
    cleared = dict((name, '') for name in (
        'EC2_URL', 'S3_URL', 'EUARE_URL', 'AWS_DEFAULT_REGION',
        'AWS_AUTH_REGION',
        'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'EC2_CERT',
        'EC2_PRIVATE_KEY', 'EUCALYPTUS_CERT', 'EC2_USER_ID', 'EUSTORE_URL'))
    cleared['EUCA_CONFIG_PATH'] = str(config)
    ids = installed_ids(install(
        '--region', 'lab-admin@' + REGION, '-i',
        store.catalog['fedora']['name'], '-b', 'config-bundles',
        '--pad-name', env=cleared))
    assert list(ids) == ['image']


def test_an_old_eucarc_with_ec2_keys_only(install, install_cloud, non_admin,
                                          store, proxy):
    # Older eucarc files set EC2_ACCESS_KEY/EC2_SECRET_KEY only: they must
    # reach every request, euca2ools' own included when it is in use.
    ids = installed_ids(install(
        '-i', store.catalog['fedora']['name'], '-b', 'old-eucarc-bundles',
        '--pad-name', env={'AWS_ACCESS_KEY_ID': '',
                           'AWS_SECRET_ACCESS_KEY': '',
                           'EC2_ACCESS_KEY': install_cloud.key_id,
                           'EC2_SECRET_KEY': install_cloud.secret_key}))
    assert list(ids) == ['image']
    part_puts = [headers for (method, path, _), headers
                 in zip(proxy.requests, proxy.headers)
                 if method == 'PUT' and '.part.' in path]
    assert part_puts and all(install_cloud.key_id in header(
        headers, 'Authorization') for headers in part_puts)


@pytest.mark.skipif(not uses_euca2ools(), reason=(
    'needs euca2ools importable (EUCA2OOLS_SRC), to make it unusable'))
def test_euca2ools_that_cannot_bundle_gives_way_to_the_builtin_bundler(
        install, non_admin, store, tmpdir):
    # The real euca2ools, with its lxml made unimportable as on a machine
    # that lacks it (a stand-in module: lxml itself cannot be uninstalled
    # from under the running leg).
    blocker = tmpdir.mkdir('no-lxml').mkdir('lxml')
    blocker.join('__init__.py').write(
        'raise ImportError("No module named lxml.etree")\n')
    path = os.pathsep.join([str(blocker.dirpath())] + [
        entry for entry in os.environ.get('PYTHONPATH', '').split(os.pathsep)
        if entry])
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'no-lxml-bundles', '--pad-name',
                     env={'PYTHONPATH': path})
    assert list(installed_ids(result)) == ['image']
    assert result.messages == [
        'eustore-install-image: warning: euca2ools is installed but its '
        'bundle commands do not load (No module named lxml.etree); using '
        'the built-in bundler']


def sent_signatures(proxy):
    """The signatures of every request the cloud was sent (SigV4 or, from
    euca2ools, HMAC-V1)."""
    found = []
    for headers in proxy.headers:
        authorization = header(headers, 'Authorization') or ''
        found.extend(re.findall(r'Signature=(\w+)', authorization) or
                     re.findall(r'^AWS [^:\s]+:(\S+)$', authorization))
    return found


def bundle_keys(proxy, cloud_keys, workdir):
    """The AES key and IV (hex) of each bundle whose manifest was sent."""
    found = []
    for method, path, body in proxy.requests:
        if method == 'PUT' and path.endswith('.manifest.xml'):
            image = ElementTree.fromstring(body).find('image')
            for field in ('ec2_encrypted_key', 'ec2_encrypted_iv'):
                found.append(openssl_decrypt_hex(
                    image.find(field).text, cloud_keys.key_path,
                    workdir).decode('ascii'))
    return found


def test_secrets_stay_out_of_debug_output(install, install_cloud, non_admin,
                                          proxy, store, keys, tmpdir):
    # The keys given as options too: requestbuilder logs the options.
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'debug-bundles', '--pad-name', '--debug',
                     '-I', install_cloud.key_id,
                     '-S', install_cloud.secret_key)
    assert result.returncode == 0, result.stderr
    assert 'RegisterImage' in result.stderr  # debugging really was on
    output = result.stdout + result.stderr
    assert install_cloud.secret_key not in output
    signatures = sent_signatures(proxy)
    assert len(signatures) > 5
    assert not [signature for signature in signatures
                if signature in output]
    assert 'Signature=<redacted>' in output or \
        'AWS {0}:<redacted>'.format(install_cloud.key_id) in output
    secrets = bundle_keys(proxy, keys[1], str(tmpdir))
    assert len(secrets) == 2
    assert not [secret for secret in secrets if secret in output]
    user_key_body = keys[0].key_pem.decode('ascii').splitlines()[1]
    assert user_key_body not in output


def debug_lines(result, *modules):
    """The messages the modules eustore_plugin.<module> logged."""
    found = []
    for line in result.stderr.splitlines():
        for module in modules:
            logger = ' eustore_plugin.{0} '.format(module)
            if re.match(r'^\S+ \S+ DEBUG +{0}'.format(re.escape(
                    logger.lstrip())), line):
                found.append(line.split(logger, 1)[1])
    return found


def test_debug_shows_each_decision(cli, install, non_admin, proxy, store,
                                   demo_store_dir):
    image = store.catalog['fedora']
    path = '/' + image['url']
    data = tarball_bytes(demo_store_dir, image)
    # A catalog fetched before, so that the install's fetch is a 304.
    assert cli('eustore-describe-images', '-U', store.url).returncode == 0
    answers = []

    def cut_then_ignore_range(handler, asked):
        answers.append(asked)
        return serve(handler, data, honor_range=False,
                     limit=20000 if len(answers) == 1 else None)
    store.faults[path] = cut_then_ignore_range
    proxy.fail(lambda method, asked, body: b'Action=RegisterImage' in body,
               status=400)
    result = install('-i', image['name'], '-b', 'decisions-bundles',
                     '--pad-name', '--debug')
    assert result.returncode == 1
    # Which backend,
    (backend_line,) = debug_lines(result, 'install.instancestore')
    assert backend_line.startswith('installing through euca2ools ') \
        if uses_euca2ools() else \
        backend_line == 'installing with the built-in bundler'
    # the catalog's cached copy, and the signature policy applied,
    store_lines = debug_lines(result, 'store.reader', 'store.trust')
    assert [line for line in store_lines if re.match(
        r'^{0}catalog is unchanged since .* \(304\)$'.format(
            re.escape(store.url)), line)]
    assert 'signature policy for the catalog at {0}catalog: unsigned or ' \
        'unverifiable catalogs are used with a warning; trusted keys: ' \
        'none'.format(store.url) in store_lines
    # a resume and why, and a 200 answered to it,
    download_lines = debug_lines(result, 'store.download')
    assert [line for line in download_lines if re.match(
        r'^download of {0}{1} cut after \d+ bytes \(.+\); resuming$'.format(
            re.escape(store.url), re.escape(image['url'])), line)]
    assert [line for line in download_lines if re.match(
        r'^the store answered 200 \(the whole file\) to a resume: it '
        r'ignores Range; (skipping the \d+ bytes already read|starting '
        r'over)$', line)]
    # and each undo step, newest first (the refused registration made
    # nothing to undo).
    undo_lines = [line for line in debug_lines(result, 'install.journal')
                  if line.startswith('undoing: ')]
    assert re.match(r'^undoing: object decisions-bundles/\S+\.manifest\.xml$',
                    undo_lines[0])
    assert [re.match(r'^undoing: object decisions-bundles/\S+\.part\.0+$',
                     line) is not None for line in undo_lines[1:-1]] == \
        [True] * (len(undo_lines) - 2)
    assert undo_lines[-1] == 'undoing: bucket decisions-bundles'
    assert debug_lines(result, 'install.installer')


@pytest.mark.skipif(not which('script'),
                    reason='needs script(1) (util-linux) for a terminal')
def test_progress_bars_on_a_terminal(install_args, user_env, eucarc,
                                     non_admin, store):
    # The bars show only on a terminal: run the command under one.
    command = ' '.join(shlex_quote(arg) for arg in command_argv(INSTALL) + [
        '-i', store.catalog['fedora']['name'], '-b', 'tty-bundles',
        '--pad-name'] + install_args)
    env = dict(user_env, **eucarc)
    proc = subprocess.Popen(['script', '-qec', command, '/dev/null'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.PIPE, env=env)
    out = proc.communicate()[0].decode('utf-8', 'replace')
    assert proc.returncode == 0, out
    assert 'downloading' in out  # and bundling, when streamed
    assert '100%' in out
    assert 'Installed new image ' in out


def test_download_cut_mid_stream_resumes(install, non_admin, proxy, store,
                                         demo_store_dir, cloud, keys,
                                         tmpdir):
    image = store.catalog['fedora']
    path = '/' + image['url']
    data = tarball_bytes(demo_store_dir, image)
    # The connection drops after 20000 bytes, once; then a Range resumes.
    store.faults[path] = cut_after(data, 20000, times=1)
    ids = installed_ids(install('-i', image['name'], '-b', 'cut-bundles',
                                '-p', 'cut-fedora'))
    ranges = [header(headers, 'Range') for _, asked, headers
              in store.requests if asked == path]
    assert ranges[0] is None and len(ranges) == 2
    assert re.match(r'^bytes=\d+-$', ranges[1])
    # The image went into the cloud whole.
    machine = fetch_and_decode(cloud, 'cut-bundles',
                               'cut-fedora.manifest.xml', keys[1],
                               str(tmpdir.join('machine')))
    assert machine == member_bytes(demo_store_dir, image, '.raw')
    assert list(ids) == ['image']


# A file replaced on the store between two requests of one download: the
# catalog is an old one, with no size or checksum to catch a splice.
LEGACY_NAME = 'fedora-legacy'
LEGACY_URL = 'images/fedora-legacy.tgz'
RAW_MEMBER = 'fedora-legacy.raw'


class LegacyStore(object):
    """A store whose catalog gives no size or checksum, holding one HVM
    tarball (``old``), and ``replacement(size)``: another such tarball."""

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(os.path.join(directory, 'images'))
        self.old = self.tarball('old.tgz', 1, 500 * 1024)
        with open(os.path.join(directory, LEGACY_URL), 'wb') as out:
            out.write(self.old)
        with open(os.path.join(directory, 'catalog'), 'w') as catalog:
            json.dump({'images': [{
                'name': LEGACY_NAME, 'url': LEGACY_URL,
                'architecture': 'x86_64', 'virtualization_type': 'hvm',
                'description': 'an old catalog\'s entry'}]}, catalog)
        self.server = StoreServer(directory).start()
        self.url = self.server.url

    def tarball(self, name, seed, size):
        path = os.path.join(self.directory, name)
        write_tarball(path, 'fedora-legacy', {RAW_MEMBER: (seed, size)})
        with open(path, 'rb') as tarball:
            return tarball.read()

    def replace_after_cut(self, new, validator, ignores_if_range=False):
        """After the first answer's first three quarters (the install has
        begun), the tarball is ``new`` (see ReplacedFile)."""
        fault = ReplacedFile(self.old, new, len(self.old) * 3 // 4,
                             validator, ignores_if_range)
        self.server.faults['/' + LEGACY_URL] = fault
        return fault

    def asked(self, name):
        """The ``name`` header of each request for the tarball."""
        return [header(headers, name) for _, path, headers
                in self.server.requests if path == '/' + LEGACY_URL]


@pytest.fixture
def legacy_store(tmpdir):
    store = LegacyStore(str(tmpdir.join('legacy-store')))
    yield store
    store.server.stop()


def registered_image(proxy, cloud, keys, tmpdir):
    """The disk image of the one image the run registered, decoded."""
    (call,) = proxy.form_requests('RegisterImage')
    bucket, _, key = call['ImageLocation'].partition('/')
    return fetch_and_decode(cloud, bucket, key, keys[1],
                            str(tmpdir.join('machine')))


def only_error(result):
    """The one line a failed install printed (the unsigned catalog's
    warning aside)."""
    assert result.returncode == 1
    (line,) = result.messages
    assert line.startswith('eustore-install-image: error: ')
    return line[len('eustore-install-image: error: '):]


@pytest.mark.skipif(uses_euca2ools(), reason=(
    'euca2ools uploads the parts itself, and says so its own way'))
def test_a_canned_acl_the_s3_refuses_is_one_line(cli, eucarc, non_admin,
                                                 proxy, cloud, store):
    # RGW refuses aws-exec-read (the default) itself, and was seen leaving
    # the next request on that connection unanswered; the proxy plays both
    # on moto, which takes the ACL.
    if s3_under_test() == 'moto':
        proxy.fail(lambda method, path, body, headers: method == 'PUT' and
                   header(headers, 'x-amz-acl') == 'aws-exec-read',
                   status=400, code='InvalidArgument', times=100,
                   with_headers=True, then_hang=True)
    result = cli(INSTALL, '-i', store.catalog['fedora']['name'], '-b',
                 'acl-refused', '-p', 'acl-refused', env=eucarc)
    assert re.match(
        r'^S3 at {0} does not take the canned ACL "aws-exec-read" \(it '
        r'answered 400 InvalidArgument to acl-refused/acl-refused\.part\.'
        r'\d+\): choose one it takes with --acl; what this run uploaded or '
        r'registered was removed$'.format(re.escape(proxy.s3_url)),
        only_error(result))
    assert not proxy.form_requests('RegisterImage')
    assert bucket_is_gone(cloud, 'acl-refused')


@pytest.mark.skipif(uses_euca2ools(), reason=(
    'with euca2ools the tarball is always downloaded to a file first'))
@pytest.mark.parametrize('validator', ['ETag', 'Last-Modified'])
def test_a_tarball_replaced_mid_stream_is_installed_again_whole(
        install, non_admin, proxy, cloud, keys, legacy_store, tmpdir,
        validator):
    fault = legacy_store.replace_after_cut(
        legacy_store.tarball('new.tgz', 2, 500 * 1024), validator)
    result = install('-i', LEGACY_NAME, '-b', 'replaced-stream', '--pad-name',
                     '-U', legacy_store.url)
    assert list(installed_ids(result)) == ['image'], result
    # Said once, in one line; then the store's new file, asked for afresh
    # (no If-Range naming the old one), installed whole: never spliced.
    (said,) = [line for line in result.messages if 'changed' in line]
    assert said == (
        'eustore-install-image: warning: the file changed on the store '
        'while it was being read (at {0}{1}); removed what this run had '
        'made, and starting over from the beginning'.format(
            legacy_store.url, LEGACY_URL))
    assert legacy_store.asked('If-Range') == [None, fault.validator_of(0),
                                              None]
    assert registered_image(proxy, cloud, keys, tmpdir) == \
        image_bytes(500 * 1024, 2)


@pytest.mark.skipif(uses_euca2ools(), reason=(
    'with euca2ools the tarball is always downloaded to a file first'))
def test_a_tarball_that_changes_again_fails_and_leaves_nothing(
        install, non_admin, proxy, cloud, legacy_store):
    versions = [legacy_store.old,
                legacy_store.tarball('new.tgz', 2, 500 * 1024),
                legacy_store.tarball('newer.tgz', 3, 500 * 1024)]
    # Cut, then replaced; read again from the start, cut, replaced again
    # (each cut three quarters of the way into the version served).
    cuts = [len(data) * 3 // 4 for data in versions]
    legacy_store.server.faults['/' + LEGACY_URL] = ChangingFile(
        versions, [(0, cuts[0]), (1, None), (1, cuts[1])])
    result = install('-i', LEGACY_NAME, '-b', 'replaced-twice', '-U',
                     legacy_store.url)
    assert result.returncode == 1
    url = legacy_store.url + LEGACY_URL
    assert result.messages == [
        'eustore-install-image: warning: the file changed on the store '
        'while it was being read (at {0}); removed what this run had made, '
        'and starting over from the beginning'.format(url),
        'eustore-install-image: error: the file changed on the store while '
        'it was being read; run the command again (at {0}); what this run '
        'uploaded or registered was removed'.format(url)]
    assert len(legacy_store.asked('If-Range')) == 4
    assert not proxy.form_requests('RegisterImage')
    assert bucket_is_gone(cloud, 'replaced-twice')


@pytest.mark.parametrize('ignores_if_range', [
    pytest.param(False, id='if-range-honoured'),
    pytest.param(True, id='if-range-ignored')])  # as Ceph RGW 16 does
@pytest.mark.parametrize('validator', ['ETag', 'Last-Modified'])
def test_a_tarball_replaced_mid_download_is_downloaded_afresh(
        install, non_admin, proxy, cloud, keys, legacy_store, tmpdir,
        validator, ignores_if_range):
    new = legacy_store.tarball('new.tgz', 2, 500 * 1024)
    fault = legacy_store.replace_after_cut(new, validator, ignores_if_range)
    result = install('-i', LEGACY_NAME, '-b', 'replaced-dir', '--pad-name',
                     '-U', legacy_store.url, '-d', str(tmpdir.mkdir('keep')))
    assert list(installed_ids(result)) == ['image']
    ranges = legacy_store.asked('Range')
    assert ranges[0] is None and re.match(r'^bytes=\d+-$', ranges[1])
    assert legacy_store.asked('If-Range')[:2] == [None,
                                                  fault.validator_of(0)]
    # The new file whole: at once, or asked for again when the rest of it
    # came instead.
    assert ranges[2:] == ([None] if ignores_if_range else [])
    # The new file, whole: not the old one's first bytes and the new one's
    # rest.
    assert registered_image(proxy, cloud, keys, tmpdir) == \
        image_bytes(500 * 1024, 2)


@pytest.mark.skipif(uses_euca2ools(), reason=(
    'with euca2ools the tarball is always downloaded to a file first'))
def test_a_416_to_a_resumed_stream_is_a_sentence_and_a_new_start(
        install, non_admin, proxy, cloud, keys, legacy_store, tmpdir):
    # The file replaced by a shorter one, with no validator to tell: the
    # 416 says so, and the install starts over from the beginning.
    legacy_store.replace_after_cut(
        legacy_store.tarball('short.tgz', 3, 4096), None)
    result = install('-i', LEGACY_NAME, '-b', 'refused-stream', '--pad-name',
                     '-U', legacy_store.url)
    assert list(installed_ids(result)) == ['image'], result
    assert [line for line in result.messages if '416' in line] == [
        'eustore-install-image: warning: the store refused to resume the '
        'download (416): the file on it is shorter than what was already '
        'read (at {0}{1}); removed what this run had made, and starting over '
        'from the beginning'.format(legacy_store.url, LEGACY_URL)]
    assert registered_image(proxy, cloud, keys, tmpdir) == \
        image_bytes(4096, 3)


def test_a_416_to_a_resumed_download_starts_it_over(install, non_admin,
                                                    proxy, cloud, keys,
                                                    legacy_store, tmpdir):
    legacy_store.replace_after_cut(
        legacy_store.tarball('short.tgz', 3, 4096), None)
    result = install('-i', LEGACY_NAME, '-b', 'refused-dir', '--pad-name',
                     '-U', legacy_store.url, '-d', str(tmpdir.mkdir('keep')))
    assert list(installed_ids(result)) == ['image']
    ranges = legacy_store.asked('Range')
    assert len(ranges) == 3 and ranges[0] is None and ranges[2] is None
    assert re.match(r'^bytes=\d+-$', ranges[1])
    assert registered_image(proxy, cloud, keys, tmpdir) == \
        image_bytes(4096, 3)


def test_missing_endpoint_and_unknown_image_are_explained(install, store):
    result = install('-i', store.catalog['fedora']['name'], '-b', 'xx-bucket',
                     env={'EC2_URL': ''})
    assert result.returncode == 1
    for fragment in ('no EC2 endpoint', '--ec2-url', 'EC2_URL', '"ec2-url"',
                     '--region'):
        assert fragment in result.stderr
    result = install('-i', 'fedora-x86_64-hvm-dem', '-b', 'xx-bucket')
    assert result.returncode == 1
    assert 'no image named "fedora-x86_64-hvm-dem"' in result.stderr
    assert 'closest names: fedora-x86_64-hvm-demo' in result.stderr
    assert len(result.messages) == 1


@pytest.mark.skipif(uses_euca2ools(), reason=(
    'with euca2ools the tarball is downloaded before anything is created in '
    'the cloud, so a stalled download leaves nothing to remove'))
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM,
                                    signal.SIGHUP])
def test_interrupting_removes_what_the_run_created(
        install_args, install_cloud, eucarc, user_env, non_admin, proxy,
        cloud, store, demo_store_dir, signum):
    # Ctrl-C, a service manager's SIGTERM and a closed terminal's SIGHUP
    # alike: undone, one line, exit 128 + the signal as shells report it.
    image = store.catalog['fedora']
    data = tarball_bytes(demo_store_dir, image)
    released = threading.Event()

    def stall_mid_tarball(handler, path):
        # All but its last KiB, then nothing until the test is over.  (Not
        # less: Python 2's socket files block until a whole read is filled.)
        handler.send_response(200)
        handler.send_header('Content-Length', str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:-1024])
        handler.wfile.flush()
        released.wait(60)
        return True
    store.faults['/' + image['url']] = stall_mid_tarball
    proc = start_command(INSTALL, ['-i', image['name'], '-b',
                                   'interrupted-bundles', '-p',
                                   'interrupted-fedora'] + install_args,
                         dict(user_env, **eucarc))
    try:
        deadline = time.time() + 30
        # Its bucket made (the PUT seen, and done: RGW takes a while to
        # make one, and one made after the rollback would stay).
        while not [path for method, path, _ in proxy.requests
                   if method == 'PUT' and path == '/interrupted-bundles'] \
                or not cloud.bucket_exists('interrupted-bundles'):
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signum)
        result = finish_command(proc)
    finally:
        released.set()
    assert result.returncode == 128 + signum
    assert result.messages == [INTERRUPTED_AND_UNDONE]
    assert bucket_is_gone(cloud, 'interrupted-bundles')


def test_without_an_iam_endpoint_the_admin_check_is_skipped(install, store,
                                                            proxy):
    result = install('-i', store.catalog['centos']['name'], '-b',
                     'no-iam-bundles', '--pad-name', env={'EUARE_URL': ''})
    assert len(installed_ids(result)) == 3
    # Ours only: with euca2ools inside, its openssl calls add lines too.
    ours = [line for line in result.messages
            if line.startswith('eustore-install-image:')]
    assert ours == [
        'eustore-install-image: warning: no IAM endpoint is known, so '
        'whether this account may register kernels was not checked (give '
        '--iam-url or set EUARE_URL)']
    assert not proxy.form_requests('ListAccountAliases')


def part_put(method, path, body):
    return method == 'PUT' and path.endswith('.part.00')


@pytest.mark.skipif(not uses_euca2ools(), reason=(
    "needs euca2ools (EUCA2OOLS_SRC): the check is of euca2ools' uploads; "
    'the built-in bundler closes and hashes each part before it is sent'))
def test_a_part_euca2ools_left_short_is_uploaded_again(install, non_admin,
                                                       proxy, store, cloud):
    # What euca2ools 3.4's race leaves (a part cut at a 4 KiB boundary,
    # the upload reported whole), made to happen once by the proxy.
    proxy.shorten(part_put, cut=4096, times=1)
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'short-bundles', '-p', 'short-fedora')
    assert list(installed_ids(result)) == ['image']
    (warning,) = [line for line in result.messages
                  if line.startswith(INSTALL + ':')]
    assert re.match(r'^eustore-install-image: warning: euca2ools uploaded '
                    r'the machine bundle damaged \(part '
                    r'short-fedora\.part\.00 is (\d+) bytes in the bucket '
                    r'where the manifest needs (\d+)\); uploading it '
                    r'again$', warning), warning
    # What is in the bucket now is what the manifest says.
    manifest = cloud.get_object('short-bundles', 'short-fedora.manifest.xml')
    bundled = int(re.search(br'<bundled_size>(\d+)</bundled_size>',
                            manifest).group(1))
    stored = cloud.head_object('short-bundles', 'short-fedora.part.00')
    assert int(stored['Content-Length']) == bundled


@pytest.mark.skipif(not uses_euca2ools(), reason=(
    "needs euca2ools (EUCA2OOLS_SRC): the check is of euca2ools' uploads"))
def test_a_bundle_euca2ools_keeps_damaging_is_refused_and_removed(
        install, non_admin, proxy, store, cloud):
    proxy.shorten(part_put, cut=4096, times=100)
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'always-short', '-p', 'always-short-fedora')
    assert result.returncode == 1
    errors = [line for line in result.messages if ': error: ' in line]
    assert len(errors) == 1
    assert 'euca2ools uploaded the machine bundle damaged 3 times' in \
        errors[0]
    assert 'part always-short-fedora.part.00 is ' in errors[0]
    assert 'what this run uploaded or registered was removed' in errors[0]
    assert not proxy.form_requests('RegisterImage')
    with pytest.raises(CloudError) as gone:
        cloud.list_keys('always-short')
    assert gone.value.status_code == 404


def test_reuse_finds_earlier_installs_by_identity_and_old_names(
        install, non_admin, proxy, store, cloud):
    image = store.catalog['fedora']
    first = installed_ids(install('-i', image['name'], '-b', 'reuse-by-tags',
                                  '-y'))
    # Found again by its tags (same store, entry and checksum), whatever
    # its name now is: -p names this install differently.
    again = install('-i', image['name'], '-b', 'reuse-by-tags', '-y', '-p',
                    'another-name')
    assert again.lines == ['Reused installed image ' + first['image']]
    # An image earlier versions installed, named eustore-<tarball name>
    # and carrying no tags, is found by that name.
    cloud.deregister_image(first['image'])
    legacy = installed_ids(install(
        '-i', image['name'], '-b', 'reuse-legacy', '-p',
        'eustore-demo-fedora-20-x86_64-hvm'))
    for key in ('eustore:store', 'eustore:image'):
        cloud._send(DeleteTags, cloud.ec2, {'ResourceId.1': legacy['image'],
                                            'Tag.1.Key': key})
    reused = install('-i', image['name'], '-b', 'reuse-legacy', '-y')
    assert reused.lines == ['Reused installed image ' + legacy['image']]
    # --pad-name installs another copy all the same.
    copy = installed_ids(install('-i', image['name'], '-b', 'reuse-legacy',
                                 '--pad-name'))
    assert list(copy) == ['image']
    # Gone again: the legacy name would be found by other tests' installs
    # of the same tarball.
    for image_id in (legacy['image'], copy['image']):
        cloud.deregister_image(image_id)


class DeleteTags(CreateTags):
    pass


def test_an_hvm_install_ignores_kernel_and_ramdisk_names(install, non_admin,
                                                         proxy, cloud, store):
    # An HVM image registers no kernel or ramdisk, so images and manifests
    # under those names are nobody's business here (they were an earlier
    # paravirtual install's, say).
    cloud.create_bucket('hvm-names')
    kernel = cloud.register_image(
        ImageLocation='hvm-names/elsewhere.manifest.xml',
        Name='hvm-names-kernel', Architecture='x86_64')
    cloud.put_object('hvm-names', 'hvm-names-ramdisk.manifest.xml',
                     b'<manifest/>', acl='private')
    try:
        ids = installed_ids(install('-i', store.catalog['fedora']['name'],
                                    '-b', 'hvm-names', '-p', 'hvm-names'))
        assert list(ids) == ['image']
        assert not [path for method, path, _ in proxy.requests
                    if method == 'HEAD' and 'kernel.manifest' in path]
    finally:
        cloud.deregister_image(kernel)


@pytest.mark.skipif(uses_euca2ools(), reason=(
    'euca2ools uploads one part at a time'))
def test_parts_go_up_at_once(install, non_admin, proxy, tmpdir):
    # 25 MiB that do not compress: three parts.  While the cloud holds
    # the first part's PUT unanswered, the next part still goes up.
    tarball = str(tmpdir.join('random-hvm.tgz'))
    with tarfile.open(tarball, 'w:gz', compresslevel=1) as tar:
        add_member(tar, 'random-hvm/random-hvm.img', os.urandom(25 << 20))
    first = proxy.hold(lambda method, path, body: method == 'PUT' and
                       path.endswith('.part.00'))

    def second_part_sent():
        return any(method == 'PUT' and path.endswith('.part.01')
                   for method, path, _ in list(proxy.requests))
    done = []
    runner = threading.Thread(target=lambda: done.append(install(
        '-t', tarball, '-s', 'random', '-a', 'x86_64', '-b', 'at-once',
        '--upload-concurrency', '2')))
    runner.start()
    try:
        assert first.arrived.wait(120)
        deadline = time.time() + 120
        while not second_part_sent() and time.time() < deadline:
            time.sleep(0.1)
        sent_beside = second_part_sent()
    finally:
        first.release()
        runner.join(180)
    assert sent_beside
    assert list(installed_ids(done[0])) == ['image']
