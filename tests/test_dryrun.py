# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-install-image --dry-run against the demo store and moto (behind
the recording proxy): each problem a dry run is there to find, in a test of
its own, every one listed (not only the first), and the cloud's images and
objects the same after the run as before it.  Then install's --json.
"""

from __future__ import absolute_import

import json
import os
import shutil
import textwrap

import pytest

from eustore_plugin.suite import uses_euca2ools
from tests.support.cloudstate import cloud_state
from tests.support.dryrun import assert_problems, checks, failed, steps
from tests.support.http import StoreServer
from tests.support.install import eucarc, install, installed_ids, store

# The install fixtures (tests/support/install.py), used here.
INSTALL_FIXTURES = (eucarc, install, store)


@pytest.fixture
def dry_run(install, cloud):
    """Run install --dry-run, checking that it changed nothing."""
    def run(*args, **kwargs):
        before = cloud_state(cloud)
        result = install(*(('--dry-run',) + args), **kwargs)
        assert cloud_state(cloud) == before
        return result
    return run


def assert_failed_with(result, expected):
    """The run failed with exactly the problems ``expected`` ({check:
    fragment}), and said so in one line on stderr."""
    problems = assert_problems(result, expected)
    (error,) = [line for line in result.messages if ': error: ' in line]
    assert error == ('eustore-install-image: error: the dry run found {0} '
                     'problem{1} (listed above); nothing was changed'.format(
                         len(problems), '' if len(problems) == 1 else 's'))
    assert 'Traceback' not in result.stderr


def edited_store(demo_store_dir, tmpdir, edit):
    """A copy of the demo store whose catalog ``edit(images)`` changed."""
    copy = str(tmpdir.join('edited-store'))
    shutil.copytree(demo_store_dir, copy)
    path = os.path.join(copy, 'catalog')
    with open(path) as catalog:
        data = json.load(catalog)
    edit(data['images'])
    with open(path, 'w') as catalog:
        json.dump(data, catalog)
    return copy


def entry(store, os_name):
    return store.catalog[os_name]['name']


def test_a_dry_run_that_passes_says_what_would_be_done(dry_run, admin,
                                                       store):
    image = store.catalog['centos']
    result = dry_run('-i', image['name'], '-b', 'dry-bundles/some/prefix',
                     '-p', 'dry-centos')
    assert result.returncode == 0, result
    found = checks(result)
    assert all(status == 'OK' for outcomes in found.values()
               for status, _ in outcomes), result
    for check in ('cloud', 'credentials', 'bundling', 'catalog', 'image',
                  'checksum', 'tarball', 'plan', 'admin', 'reuse', 'names',
                  'bucket'):
        assert check in found, check
    assert len(found['credentials']) == 3  # EC2, S3 and IAM
    assert found['bucket'] == [('OK', 'dry-bundles: does not exist yet, and '
                                'may be created')]
    assert found['names'] == [('OK', 'free: dry-centos-kernel, '
                               'dry-centos-ramdisk, dry-centos')]
    assert steps(result) == [
        'Would download {0}{1} ({2} bytes)'.format(store.url, image['url'],
                                                   image['size']),
        'Would create bucket dry-bundles',
        'Would bundle, upload and register kernel dry-centos-kernel from '
        'dry-bundles/some/prefix/dry-centos-kernel.manifest.xml',
        'Would bundle, upload and register ramdisk dry-centos-ramdisk from '
        'dry-bundles/some/prefix/dry-centos-ramdisk.manifest.xml',
        'Would bundle, upload and register image dry-centos from '
        'dry-bundles/some/prefix/dry-centos.manifest.xml, paravirtual']
    # Nothing was downloaded: the tarball's first byte was asked for.
    assert [header for method, path, header in store.requests
            if path == '/' + image['url'] and method == 'GET']
    assert result.stderr == '' or all(
        'is not signed' in line for line in result.stderr.splitlines())


def test_an_existing_bucket_gets_a_probe_put_and_deleted(dry_run, install,
                                                         non_admin, proxy,
                                                         cloud, store):
    cloud.create_bucket('dry-existing')
    try:
        result = dry_run('-i', entry(store, 'fedora'), '-b',
                         'dry-existing/under', '-p', 'dry-fedora')
        assert result.returncode == 0, result
        (outcome,) = checks(result)['bucket']
        assert outcome == ('OK', 'dry-existing: writable (a probe object '
                           'was put under "under/" and deleted)')
        probes = [path for method, path, _ in proxy.requests
                  if method in ('PUT', 'DELETE') and '.probe' in path]
        assert len(probes) == 2 and probes[0] == probes[1]
        assert probes[0].startswith('/dry-existing/under/eustore-dry-run-')
        assert 'Would create bucket dry-existing' not in steps(result)
        assert 'admin' not in checks(result)  # HVM: no kernel to register
    finally:
        cloud.delete_bucket('dry-existing')


def test_a_refused_signature_policy(dry_run, store, tmpdir):
    config = tmpdir.join('require.ini')
    config.write('[global]\neustore-require-signature = yes\n')
    result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-sig',
                     env={'EUCA_CONFIG_PATH': str(config)})
    assert_failed_with(result, {'catalog': 'requires signed catalogs'})


def test_an_unknown_image(dry_run, store):
    result = dry_run('-i', 'fedora-x86_64-hvm-dem', '-b', 'dry-unknown')
    assert_failed_with(result, {'image': 'no image named'})
    assert steps(result) == []


def test_an_entry_without_a_checksum(dry_run, non_admin, demo_store_dir,
                                     tmpdir):
    def strip(images):
        for image in images:
            for field in ('sha256', 'md5'):
                image.pop(field, None)
    server = StoreServer(edited_store(demo_store_dir, tmpdir, strip)).start()
    try:
        result = dry_run('-i', 'fedora-x86_64-hvm-demo', '-b', 'dry-sum',
                         '-U', server.url)
    finally:
        server.stop()
    assert_failed_with(result, {'checksum': 'gives no checksum'})


def test_a_tarball_missing_from_the_store(dry_run, non_admin, demo_store_dir,
                                          tmpdir, store):
    copy = edited_store(demo_store_dir, tmpdir, lambda images: None)
    os.remove(os.path.join(copy, store.catalog['fedora']['url']))
    server = StoreServer(copy).start()
    try:
        result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-gone',
                         '-U', server.url)
    finally:
        server.stop()
    assert_failed_with(result, {'tarball': '404'})


@pytest.mark.skipif(uses_euca2ools(), reason=(
    'with euca2ools the install cloud is a moto that checks no signatures'))
def test_credentials_every_service_refuses(dry_run, store):
    result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-keys',
                     env={'AWS_SECRET_ACCESS_KEY': 'not-the-secret'})
    assert result.returncode == 1
    problems = [text for check, text in failed(result)
                if check == 'credentials']
    assert len(problems) == 3
    for service in ('EC2', 'S3', 'IAM'):
        assert [text for text in problems
                if text.startswith(service + ' at ')], service
    # What needs the cloud is not asked of a cloud that refused the keys.
    assert [check for check, _ in failed(result)] == ['credentials'] * 3


def test_a_bucket_of_somebody_else(dry_run, proxy, non_admin, store):
    proxy.fail(lambda method, path, body: method == 'HEAD' and
               path.rstrip('/') == '/dry-theirs', status=403, times=10)
    result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-theirs')
    assert_failed_with(result, {'bucket': 'exists but you may not use it'})


def test_a_bucket_that_refuses_writes(dry_run, proxy, non_admin, cloud,
                                      store):
    cloud.create_bucket('dry-readonly')
    proxy.fail(lambda method, path, body: method == 'PUT' and
               '.probe' in path, status=403, times=1)
    try:
        result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-readonly')
    finally:
        cloud.delete_bucket('dry-readonly')
    assert_failed_with(result, {'bucket': 'refused a probe object'})


def test_a_bucket_name_s3_refuses(dry_run, non_admin, store):
    result = dry_run('-i', entry(store, 'fedora'), '-b', 'My_Bucket!')
    assert_failed_with(result, {'bucket': 'is not a bucket name'})


def test_kernels_need_the_administrator(dry_run, non_admin, store):
    result = dry_run('-i', entry(store, 'centos'), '-b', 'dry-admin')
    assert_failed_with(result, {'admin': 'only the cloud administrator'})
    # The rest was checked all the same.
    assert checks(result)['bucket'][0][0] == 'OK'


def test_a_hypervisor_to_choose(dry_run, admin, store):
    result = dry_run('-i', entry(store, 'debian'), '-b', 'dry-hyper')
    assert_failed_with(result, {'hypervisor': 'choose one of: kvm, xen'})


def test_names_taken_are_all_listed(dry_run, admin, cloud, store):
    cloud.create_bucket('dry-names')
    kernel = cloud.register_image(
        ImageLocation='dry-names/elsewhere.manifest.xml',
        Name='dry-taken-kernel', Architecture='x86_64')
    cloud.put_object('dry-names', 'dry-taken.manifest.xml', b'<manifest/>',
                     acl='private')
    try:
        result = dry_run('-i', entry(store, 'centos'), '-b', 'dry-names',
                         '-p', 'dry-taken')
    finally:
        cloud.deregister_image(kernel)
        cloud.delete_object('dry-names', 'dry-taken.manifest.xml')
        cloud.delete_bucket('dry-names')
    assert result.returncode == 1
    problems = [text for check, text in failed(result) if check == 'names']
    assert len(problems) == 2, result
    assert 'an image named dry-taken-kernel is already registered ({0})' \
        .format(kernel) in problems[0]
    assert 'the bucket already holds dry-names/dry-taken.manifest.xml' in \
        problems[1]


def test_an_installed_image_is_reused_only_with_yes(dry_run, install,
                                                    non_admin, store):
    args = ('-i', entry(store, 'fedora'), '-b', 'dry-again', '-p',
            'dry-again-fedora')
    ids = installed_ids(install(*args))
    result = dry_run(*args)
    assert_failed_with(result, {'reuse': 'already installed as ' +
                                ids['image']})
    result = dry_run(*(args + ('-y',)))
    assert result.returncode == 0, result
    assert steps(result) == ['Would reuse installed image {0} '
                             '(dry-again-fedora), and do nothing '
                             'else'.format(ids['image'])]


def test_a_private_key_that_is_not_the_certificates(dry_run, non_admin,
                                                    keys, store):
    user, cloud_keys = keys
    result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-pair',
                     env={'EC2_PRIVATE_KEY': cloud_keys.key_path})
    assert_failed_with(result, {'bundling': 'does not belong to the user '
                                'certificate'})


def test_missing_bundling_credentials(dry_run, non_admin, store):
    result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-nocert',
                     env={'EC2_CERT': '', 'EUCALYPTUS_CERT': ''})
    assert_failed_with(result, {'bundling': 'bundling needs your X.509 '
                                'certificate'})
    (problem,) = [text for check, text in failed(result)]
    assert "the cloud's certificate" in problem


def test_every_problem_is_listed_at_once(dry_run, non_admin, keys, store):
    user, cloud_keys = keys
    result = dry_run('-i', entry(store, 'centos'), '-b', 'ab',
                     env={'EC2_PRIVATE_KEY': cloud_keys.key_path})
    assert_failed_with(result, {
        'bundling': 'does not belong', 'admin': 'only the cloud '
        'administrator', 'bucket': 'bucket names have 3 to 63 characters'})


def test_a_local_tarball_with_a_bad_layout(dry_run, non_admin, tmpdir):
    from tests.test_layout import make_tarball
    tarball = make_tarball(str(tmpdir.join('two-disks.tgz')), [
        ('x/a.img', b'a' * 10), ('x/b.img', b'b' * 10)])
    result = dry_run('-t', tarball, '-s', 'two', '-a', 'x86_64', '-b',
                     'dry-local')
    assert_failed_with(result, {'tarball': 'several disk images'})


def test_a_dry_run_as_json(dry_run, admin, store):
    image = store.catalog['centos']
    result = dry_run('-i', image['name'], '-b', 'dry-json/p', '-p',
                     'dry-json-centos', '--json', '--no-progress')
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data['dry_run'] is True and data['ok'] is True
    assert data['problems'] == []
    assert data['names'] == {'kernel': 'dry-json-centos-kernel',
                             'ramdisk': 'dry-json-centos-ramdisk',
                             'machine': 'dry-json-centos'}
    assert data['manifests']['machine'] == \
        'dry-json/p/dry-json-centos.manifest.xml'
    assert data['bucket'] == 'dry-json' and data['key_prefix'] == 'p/'
    assert data['source']['image'] == image['name']
    assert data['source']['checksum'] == 'sha256:' + image['sha256']
    assert data['would'][1] == 'Would create bucket dry-json'
    assert all(check['ok'] for check in data['checks'])


def test_accept_unsigned_silences_only_the_warning(dry_run, non_admin,
                                                   store, tmpdir):
    config = tmpdir.join('accept.ini')
    config.write(textwrap.dedent('''
        [global]
        eustore-accept-unsigned = yes
        '''))
    result = dry_run('-i', entry(store, 'fedora'), '-b', 'dry-accept',
                     env={'EUCA_CONFIG_PATH': str(config)})
    assert result.returncode == 0, result
    assert result.stderr == ''
    assert checks(result)['catalog'] == [('OK', 'not signed')]


# --json ------------------------------------------------------------------

def test_an_install_as_json(install, admin, proxy, store):
    image = store.catalog['centos']
    result = install('-i', image['name'], '-b', 'json-bundles/under', '-p',
                     'json-centos', '--json')
    assert result.returncode == 0, result
    assert all(ord(char) < 128 for char in result.stdout)
    data = json.loads(result.stdout)
    calls = dict((call['Name'], call)
                 for call in proxy.form_requests('RegisterImage'))
    assert sorted(data['ids']) == ['kernel', 'machine', 'ramdisk']
    assert data['names'] == {'kernel': 'json-centos-kernel',
                             'ramdisk': 'json-centos-ramdisk',
                             'machine': 'json-centos'}
    for role, name in data['names'].items():
        assert data['manifests'][role] == calls[name]['ImageLocation']
    assert calls['json-centos']['KernelId'] == data['ids']['kernel']
    assert data['bucket'] == 'json-bundles'
    assert data['key_prefix'] == 'under/'
    assert data['source'] == {
        'store': store.url, 'format': 'eustore', 'image': image['name'],
        'version': image['version'], 'checksum': 'sha256:' + image['sha256']}
    assert data['reused'] is False

    again = install('-i', image['name'], '-b', 'json-bundles/under', '-p',
                    'json-centos', '--json', '-y')
    assert again.returncode == 0, again
    reused = json.loads(again.stdout)
    assert reused['reused'] is True
    assert reused['ids'] == data['ids']
    assert reused['manifests'] == {'machine': data['manifests']['machine']}


def test_an_install_with_given_kernel_as_json(install, non_admin, store,
                                              demo_store_dir):
    tarball = os.path.join(demo_store_dir, store.catalog['centos']['url'])
    result = install('-t', tarball, '-s', 'local', '-a', 'x86_64', '-b',
                     'json-local', '--kernel', 'eki-12345678', '--ramdisk',
                     'eri-12345678', '--pad-name', '--json')
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data['ids']['kernel'] == 'eki-12345678'
    assert data['ids']['ramdisk'] == 'eri-12345678'
    assert list(data['names']) == ['machine']
    assert data['source'] == {'tarball': os.path.abspath(tarball)}


def test_a_failed_install_as_json_is_one_line_on_stderr(install, store):
    result = install('-i', 'no-such-image', '-b', 'json-none', '--json')
    assert result.returncode == 1
    assert result.stdout == ''
    assert len(result.messages) == 1
