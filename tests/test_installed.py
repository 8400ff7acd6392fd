# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-describe-installed and eustore-uninstall-image against what
eustore-install-image put into moto (through the recording, fault-injecting
proxy): installs listed with the store entry they came from, and removed
again to the last object, with nothing else touched.
"""

from __future__ import absolute_import

import io
import json
import os
import pty
import select
import subprocess
import time
import uuid

import pytest
import six

from eustore_plugin.bundle.manifest import parse_manifest
from tests.support.commands import command_argv
from tests.support.install import (ACCOUNT, INSTALL, eucarc, installed_ids,
                                   set_admin, store)

DESCRIBE = 'eustore-describe-installed'
UNINSTALL = 'eustore-uninstall-image'
ADMIN_ONLY = ('only the cloud administrator ("eucalyptus" account) may '
              'deregister kernels and ramdisks')


# The install fixtures (tests/support/install.py), used here.
INSTALL_FIXTURES = (eucarc, store)


@pytest.fixture
def bucket():
    """A bucket of this test's own."""
    return 'installed-' + uuid.uuid4().hex[:12]


@pytest.fixture
def run(install_args, cli, eucarc):
    """Run an eustore command with the eucarc sourced."""
    def run(command, *args, **kwargs):
        env = dict(eucarc, **kwargs.pop('env', {}))
        if command == INSTALL:
            args += tuple(install_args)
        return cli(command, *args, env=env, **kwargs)
    return run


def own_images(cloud):
    return sorted(item['imageId']
                  for item in cloud.describe_images(owner='self'))


def objects(cloud, bucket):
    return sorted(cloud.list_keys(bucket))


def rows(result):
    """{image id: cells} of describe-installed's output."""
    assert result.returncode == 0, result
    assert result.messages == [], result
    return dict((line.split('\t')[0], line.split('\t'))
                for line in result.lines)


def bundle_keys(cloud, bucket, name):
    """The keys of the bundle ``name``: its parts, then its manifest."""
    manifest = parse_manifest(cloud.get_object(bucket,
                                               name + '.manifest.xml'))
    return [part.filename for part in manifest.parts] + \
        [name + '.manifest.xml']


def requests_since(proxy, count, method):
    return [path for verb, path, _ in proxy.requests[count:]
            if verb == method]


def test_install_describe_uninstall_round_trip(
        bucket, run, admin, cloud, proxy, store):
    image = store.catalog['centos']
    cloud.create_bucket(bucket)
    # The user's own objects, named like the install's bundles.
    cloud.put_object(bucket, 'roundtrip-centos.part.99', b'not a part',
                     acl='private')
    cloud.put_object(bucket, 'roundtrip-centos-notes.txt', b'notes',
                     acl='private')
    images_before, objects_before = own_images(cloud), objects(cloud, bucket)

    ids = installed_ids(run(INSTALL, '-i', image['name'], '-b', bucket, '-p',
                            'roundtrip-centos'))
    listed = rows(run(DESCRIBE))
    assert listed[ids['image']] == [
        ids['image'], 'roundtrip-centos', image['name'], image['version'],
        'sha256:' + image['sha256'], store.url, ids['kernel'],
        ids['ramdisk']]
    # Machine images only: kernels and ramdisks are in their lines.
    assert ids['kernel'] not in listed and ids['ramdisk'] not in listed

    (verbose,) = rows(run(DESCRIBE, '-v', '--store', store.url)).values()
    assert verbose[:8] == listed[ids['image']]
    assert verbose[8:10] == [bucket + '/roundtrip-centos.manifest.xml',
                             'eustore']
    result = run(DESCRIBE, '--json', '--name', 'roundtrip-*')
    assert result.returncode == 0, result
    (entry,) = json.loads(result.stdout)
    assert (entry['id'], entry['entry'], entry['version'], entry['kernel'],
            entry['ramdisk'], entry['provenance']) == (
        ids['image'], image['name'], image['version'], ids['kernel'],
        ids['ramdisk'], 'tags')
    assert entry['manifest'] == bucket + '/roundtrip-centos.manifest.xml'

    bundles = dict((role, bundle_keys(cloud, bucket, name)) for role, name in
                   (('image', 'roundtrip-centos'),
                    ('kernel', 'roundtrip-centos-kernel'),
                    ('ramdisk', 'roundtrip-centos-ramdisk')))
    seen = len(proxy.requests)
    result = run(UNINSTALL, 'roundtrip-centos', '-y')
    assert result.returncode == 0, result
    assert result.messages == []
    assert result.lines == [
        'Deregistered image {0} (roundtrip-centos)'.format(ids['image']),
        'Deregistered kernel {0} (roundtrip-centos-kernel)'.format(
            ids['kernel']),
        'Deregistered ramdisk {0} (roundtrip-centos-ramdisk)'.format(
            ids['ramdisk'])] + [
        'Deleted object {0}/{1}'.format(bucket, key)
        for role in ('image', 'kernel', 'ramdisk') for key in bundles[role]
    ] + ['Uninstalled image {0} (roundtrip-centos)'.format(ids['image'])]

    assert own_images(cloud) == images_before
    assert objects(cloud, bucket) == objects_before
    # Only the manifests were read: no listing of the bucket, no prefix.
    assert requests_since(proxy, seen, 'GET') == [
        '/{0}/{1}'.format(bucket, keys[-1]) for keys in (
            bundles['image'], bundles['kernel'], bundles['ramdisk'])]
    assert sorted(requests_since(proxy, seen, 'DELETE')) == sorted(
        '/{0}/{1}'.format(bucket, key) for keys in bundles.values()
        for key in keys)
    assert ids['image'] not in rows(run(DESCRIBE))


def test_a_shared_kernel_goes_with_the_last_image_using_it(
        bucket, run, admin, cloud, store):
    image = store.catalog['centos']
    cloud.create_bucket(bucket)
    images_before = own_images(cloud)
    first = installed_ids(run(INSTALL, '-i', image['name'], '-b', bucket,
                              '-p', 'shared-first'))
    second = installed_ids(run(
        INSTALL, '-i', image['name'], '-b', bucket, '-p', 'shared-second',
        '--pad-name', '--kernel', first['kernel'], '--ramdisk',
        first['ramdisk']))
    assert list(second) == ['image']
    # (--pad-name: by its tags the first install would be reused.)
    (second_name,) = [item['name'] for item in cloud.describe_images(
        owner='self') if item['imageId'] == second['image']]
    assert second_name.startswith('shared-second')
    listed = rows(run(DESCRIBE, '--store', store.url))
    assert listed[second['image']][6:] == [first['kernel'], first['ramdisk']]
    kernel_bundles = bundle_keys(cloud, bucket, 'shared-first-kernel') + \
        bundle_keys(cloud, bucket, 'shared-first-ramdisk')

    result = run(UNINSTALL, first['image'], '-y')
    assert result.returncode == 0, result
    for role in ('kernel', 'ramdisk'):
        assert 'Keeping {0} {1} (shared-first-{0}): image {2} uses it'.format(
            role, first[role], second['image']) in result.lines
    assert not [line for line in result.lines
                if line.startswith('Deregistered ') and 'shared-first-' in
                line]
    assert own_images(cloud) == sorted(
        images_before + [first['kernel'], first['ramdisk'], second['image']])
    assert objects(cloud, bucket) == sorted(
        kernel_bundles + bundle_keys(cloud, bucket, second_name))

    result = run(UNINSTALL, second_name, '-y')
    assert result.returncode == 0, result
    assert result.lines[:3] == [
        'Deregistered image {0} ({1})'.format(second['image'], second_name),
        'Deregistered kernel {0} (shared-first-kernel)'.format(
            first['kernel']),
        'Deregistered ramdisk {0} (shared-first-ramdisk)'.format(
            first['ramdisk'])]
    assert own_images(cloud) == images_before
    assert objects(cloud, bucket) == []


def test_dry_run_shows_the_plan_and_changes_nothing(
        bucket, run, non_admin, cloud, proxy, store):
    ids = installed_ids(run(INSTALL, '-i', store.catalog['fedora']['name'],
                            '-b', bucket, '-p', 'dry-fedora'))
    keys = bundle_keys(cloud, bucket, 'dry-fedora')
    images_before = own_images(cloud)
    objects_before = objects(cloud, bucket)
    seen = len(proxy.requests)
    result = run(UNINSTALL, ids['image'], '--dry-run')
    assert result.returncode == 0, result
    assert result.messages == []
    assert result.lines == [
        'Will deregister image {0} (dry-fedora)'.format(ids['image'])] + [
        'Will delete object {0}/{1}'.format(bucket, key) for key in keys] + [
        'Dry run: nothing was removed']
    assert own_images(cloud) == images_before
    assert objects(cloud, bucket) == objects_before
    assert not requests_since(proxy, seen, 'DELETE')
    assert not proxy.form_requests('DeregisterImage')
    # And it can still be removed for real:
    assert run(UNINSTALL, ids['image'], '-y').returncode == 0
    assert objects(cloud, bucket) == []


def answer_on_a_terminal(argv, env, answer):
    """Run ``argv`` on a pseudo-terminal; answer its question with
    ``answer``.  Returns the exit status and everything it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    output, answered = b'', False
    deadline = time.time() + 120
    try:
        while True:
            ready = select.select([master], [], [],
                                  max(0, deadline - time.time()))[0]
            assert ready, 'no answer within 120 s: {0!r}'.format(output)
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the command has closed the terminal
                break
            if not data:
                break
            output += data
            if not answered and b'[y/N] ' in output:
                os.write(master, answer + b'\n')
                answered = True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return proc.returncode, output.decode('utf-8', 'replace')


def test_on_a_terminal_it_asks_first(
        bucket, run, non_admin, cloud, store, user_env, eucarc):
    ids = installed_ids(run(INSTALL, '-i', store.catalog['fedora']['name'],
                            '-b', bucket, '-p', 'tty-fedora'))
    keys = bundle_keys(cloud, bucket, 'tty-fedora')
    images_before = own_images(cloud)
    argv = command_argv(UNINSTALL) + [ids['image']]
    env = dict(user_env, **eucarc)

    status, output = answer_on_a_terminal(argv, env, b'n')
    assert status == 1, output
    assert 'Will deregister image {0} (tty-fedora)'.format(ids['image']) in \
        output
    assert 'Remove 1 image and {0} objects? [y/N] '.format(len(keys)) in \
        output
    assert 'error: not confirmed; nothing was removed' in output
    assert own_images(cloud) == images_before
    assert objects(cloud, bucket) == sorted(keys)

    status, output = answer_on_a_terminal(argv, env, b'y')
    assert status == 0, output
    assert 'Uninstalled image {0} (tty-fedora)'.format(ids['image']) in output
    assert ids['image'] not in own_images(cloud)
    assert objects(cloud, bucket) == []


def test_without_a_terminal_and_without_y_it_refuses(
        bucket, run, non_admin, cloud, store):
    ids = installed_ids(run(INSTALL, '-i', store.catalog['fedora']['name'],
                            '-b', bucket, '-p', 'pipe-fedora'))
    images_before = own_images(cloud)
    objects_before = objects(cloud, bucket)
    result = run(UNINSTALL, 'pipe-fedora')
    assert result.returncode == 1
    assert result.stdout == ''
    assert result.messages == [
        'eustore-uninstall-image: error: not removing {0} (pipe-fedora) '
        'unasked: standard input is not a terminal; use -y to remove it, or '
        '--dry-run to see what would be removed'.format(ids['image'])]
    assert own_images(cloud) == images_before
    assert objects(cloud, bucket) == objects_before
    assert run(UNINSTALL, 'pipe-fedora', '-y').returncode == 0


def test_an_image_not_from_a_store_is_never_removed(run, non_admin, cloud):
    name = 'not-from-a-store-' + uuid.uuid4().hex[:8]
    image_id = cloud.register_image(
        ImageLocation='own-bundles/{0}.manifest.xml'.format(name),
        Name=name, Architecture='x86_64', Description='built by hand')
    try:
        for wanted in (image_id, name):
            result = run(UNINSTALL, wanted, '-y')
            assert result.returncode == 1
            assert result.stdout == ''
            assert result.messages == [
                'eustore-uninstall-image: error: image {0} ({1}) was not '
                'installed from an image store (it has no eustore tags and '
                'no "[eustore: ...]" description), so it is not removed: '
                'eustore-uninstall-image removes only what '
                'eustore-install-image installed'.format(image_id, name)]
        assert image_id in own_images(cloud)
        assert image_id not in rows(run(DESCRIBE))
        result = run(UNINSTALL, 'no-such-image-anywhere', '-y')
        assert result.returncode == 1
        assert 'no image of this account has the id or name ' \
            '"no-such-image-anywhere"' in result.stderr
    finally:
        cloud.deregister_image(image_id)


def test_a_non_admin_keeps_the_kernel_and_is_told_why(
        bucket, run, cloud, store):
    set_admin(cloud, True)
    ids = installed_ids(run(INSTALL, '-i', store.catalog['centos']['name'],
                            '-b', bucket, '-p', 'nonadmin-centos'))
    kept = bundle_keys(cloud, bucket, 'nonadmin-centos-kernel') + \
        bundle_keys(cloud, bucket, 'nonadmin-centos-ramdisk')
    set_admin(cloud, False)
    try:
        result = run(UNINSTALL, ids['image'], '-y')
        assert result.returncode == 0, result
        # Told first, before anything is removed.
        assert result.lines[:3] == [
            'Keeping {0} {1} (nonadmin-centos-{0}): {2}'.format(
                role, ids[role], ADMIN_ONLY) for role in ('kernel',
                                                          'ramdisk')] + [
            'Deregistered image {0} (nonadmin-centos)'.format(ids['image'])]
        images = own_images(cloud)
        assert ids['image'] not in images
        assert ids['kernel'] in images and ids['ramdisk'] in images
        assert objects(cloud, bucket) == sorted(kept)
        # Kernels are not uninstalled on their own.
        result = run(UNINSTALL, ids['kernel'], '-y')
        assert result.returncode == 1
        assert 'is the kernel of installed images, not a machine image' in \
            result.stderr
    finally:
        for role in ('kernel', 'ramdisk'):
            cloud.deregister_image(ids[role])


def test_a_failure_says_what_was_removed_and_what_is_left(
        bucket, run, admin, cloud, proxy, store):
    ids = installed_ids(run(INSTALL, '-i', store.catalog['centos']['name'],
                            '-b', bucket, '-p', 'failing-centos'))
    kernel_keys = bundle_keys(cloud, bucket, 'failing-centos-kernel')
    ramdisk_keys = bundle_keys(cloud, bucket, 'failing-centos-ramdisk')
    proxy.fail(lambda method, path, body: b'Action=DeregisterImage' in body
               and ids['kernel'].encode('ascii') in body, status=400)
    try:
        result = run(UNINSTALL, ids['image'], '-y')
        assert result.returncode == 1
        (error,) = result.messages
        assert error.startswith(
            'eustore-uninstall-image: error: could not deregister kernel '
            '{0} (failing-centos-kernel) (EC2 at '.format(ids['kernel']))
        assert error.endswith(
            '; removed: image {0} (failing-centos); left: kernel {1} '
            '(failing-centos-kernel), ramdisk {2} (failing-centos-ramdisk), '
            '{3} objects of the bundle {6}/failing-centos.manifest.xml, '
            '{4} objects of the bundle {6}/failing-centos-kernel.manifest.'
            'xml, {5} objects of the bundle {6}/failing-centos-ramdisk.'
            'manifest.xml'.format(
                ids['image'], ids['kernel'], ids['ramdisk'],
                len(bundle_keys(cloud, bucket, 'failing-centos')),
                len(kernel_keys), len(ramdisk_keys), bucket))
        assert result.lines == ['Deregistered image {0} (failing-centos)'
                                .format(ids['image'])]
        images = own_images(cloud)
        assert ids['image'] not in images and ids['kernel'] in images
    finally:
        for role in ('kernel', 'ramdisk'):
            cloud.deregister_image(ids[role])


def test_without_tags_the_description_says_where_it_came_from(
        bucket, run, non_admin, cloud, proxy, store):
    proxy.fail(lambda method, path, body: b'Action=CreateTags' in body,
               status=400, times=10)
    image = store.catalog['fedora']
    result = run(INSTALL, '-i', image['name'], '-b', bucket,
                 '-p', 'untagged-fedora')
    ids = installed_ids(result)
    assert 'did not take tags' in result.stderr
    listed = rows(run(DESCRIBE, '--store', store.url))
    assert listed == {ids['image']: [
        ids['image'], 'untagged-fedora', image['name'], image['version'], '',
        store.url, '', '']}
    result = run(DESCRIBE, '--json', '--store', store.url)
    assert json.loads(result.stdout)[0]['provenance'] == 'description'

    # moto says nothing of where an image's manifest is, and there is no
    # tag to say it: the image goes, its bundle is left, and so said.
    result = run(UNINSTALL, 'untagged-fedora', '-y')
    assert result.returncode == 0, result
    assert result.lines == [
        'Note: the bundle of image {0} (untagged-fedora) is left: the cloud '
        'does not say where its manifest is, and it has no eustore:manifest '
        'tag'.format(ids['image']),
        'Deregistered image {0} (untagged-fedora)'.format(ids['image']),
        'Uninstalled image {0} (untagged-fedora)'.format(ids['image'])]
    assert ids['image'] not in own_images(cloud)


def test_what_the_cloud_says_is_shown_cleaned_and_filtered(run, cloud):
    store = 'http://store-{0}.example/'.format(uuid.uuid4().hex[:8])
    made = []
    try:
        # What XML can carry: C1 controls (CSI), bidirectional overrides,
        # tabs.
        for name, version in (('clean-alpha', u'1\x9b2J\u202e'),
                              ('clean-beta', u'2\tb')):
            image_id = cloud.register_image(
                ImageLocation='b/{0}.manifest.xml'.format(name), Name=name,
                Architecture='x86_64')
            made.append(image_id)
            cloud.create_tags(image_id, {
                'eustore:store': store, 'eustore:image': name + '-entry',
                # requestbuilder sends str() of each value: bytes on 2.7.
                'eustore:version': version.encode('utf-8') if six.PY2
                else version, 'eustore:role': 'machine'})
        listed = rows(run(DESCRIBE, '--store', store))
        assert [cells[1:5] for _, cells in sorted(listed.items(),
                                                  key=lambda i: i[1][1])] \
            == [['clean-alpha', 'clean-alpha-entry', '1\\x9b2J\\u202e', ''],
                ['clean-beta', 'clean-beta-entry', '2\\tb', '']]
        only = rows(run(DESCRIBE, '--store', store, '--name', '*beta-entry'))
        assert list(only) == [made[1]]
        result = run(DESCRIBE, '--json', '--store', store)
        assert all(ord(char) < 128 for char in result.stdout)
        assert sorted(entry['version'] for entry in
                      json.loads(result.stdout)) == [u'1\x9b2J\u202e',
                                                     u'2\tb']
    finally:
        for image_id in made:
            cloud.deregister_image(image_id)


def test_a_kernel_an_image_of_another_owner_uses_is_kept(
        bucket, run, admin, cloud, store):
    # moto's own images are of Amazon's accounts: one of them, tagged as an
    # install by another account would tag it, boots with this kernel.
    foreign = [item for item in cloud.describe_images(
        filters={'name': ['amzn*']}) if item.get('imageOwnerId') != ACCOUNT]
    if not foreign:
        pytest.skip('this moto shows no images of other owners')
    other = foreign[0]['imageId']
    ids = installed_ids(run(INSTALL, '-i', store.catalog['centos']['name'],
                            '-b', bucket, '-p', 'foreign-centos'))
    cloud.create_tags(other, {'eustore:kernel-id': ids['kernel']})
    try:
        result = run(UNINSTALL, ids['image'], '-y')
        assert result.returncode == 0, result
        assert result.lines[0] == 'Keeping kernel {0} ' \
            '(foreign-centos-kernel): image {1} uses it'.format(ids['kernel'],
                                                                other)
        assert 'Deregistered ramdisk {0} (foreign-centos-ramdisk)'.format(
            ids['ramdisk']) in result.lines
        images = own_images(cloud)
        assert ids['kernel'] in images and ids['ramdisk'] not in images
        assert objects(cloud, bucket) == sorted(
            bundle_keys(cloud, bucket, 'foreign-centos-kernel'))
    finally:
        cloud.create_tags(other, {'eustore:kernel-id': 'none'})
        cloud.deregister_image(ids['kernel'])


# ------------------------------------------------------------ EBS-backed

def ebs_backed_image(install_cloud, cloud, tmpdir, name, store, snapshot=None):
    """An EBS-backed image as an EBS install leaves it: a snapshot written
    through the EBS direct APIs (unless ``snapshot`` is given), the image
    registered from it and tagged.  Returns (image id, snapshot id)."""
    if snapshot is None:
        from eustore_plugin.install.journal import Journal
        from eustore_plugin.install.snapshot import SnapshotWriter
        from tests.support.ebs import ebs_direct
        ec2, ebs = ebs_direct(install_cloud)
        journal = Journal(ec2.identity(ACCOUNT), str(tmpdir.join(name)))
        data = b'\x01' * 1000
        snapshot = SnapshotWriter(ebs, ec2, journal).write(
            io.BytesIO(data), len(data)).id
        journal.finish()
    image_id = cloud.register_image(**{
        'Name': name, 'Architecture': 'x86_64', 'RootDeviceName': '/dev/xvda',
        'VirtualizationType': 'hvm',
        'BlockDeviceMapping.1.DeviceName': '/dev/xvda',
        'BlockDeviceMapping.1.Ebs.SnapshotId': snapshot})
    cloud.create_tags(image_id, {
        'eustore:store': store, 'eustore:format': 'eustore',
        'eustore:image': name + '-entry', 'eustore:version': '1',
        'eustore:checksum': 'sha256:' + '0' * 64, 'eustore:role': 'machine',
        'eustore:snapshot': snapshot})
    return image_id, snapshot


def snapshot_exists(cloud, snapshot_id):
    return snapshot_id in [snapshot['snapshotId'] for snapshot in
                           cloud.describe_snapshots(owner='self')]


def test_an_ebs_backed_image_goes_with_its_snapshot(
        run, install_cloud, cloud, tmpdir):
    store = 'http://store-{0}.example/'.format(uuid.uuid4().hex[:8])
    name = 'ebs-' + uuid.uuid4().hex[:8]
    image_id, snapshot = ebs_backed_image(install_cloud, cloud, tmpdir, name,
                                          store)
    (verbose,) = rows(run(DESCRIBE, '-v', '--store', store)).values()
    # No manifest; root device type and snapshot last.
    assert verbose[8] == '' and verbose[-2:] == ['ebs', snapshot]
    result = run(DESCRIBE, '--json', '--store', store)
    (entry,) = json.loads(result.stdout)
    assert (entry['root_device_type'], entry['snapshot'],
            entry['manifest']) == ('ebs', snapshot, None)

    result = run(UNINSTALL, name, '--dry-run')
    assert result.lines == [
        'Will deregister image {0} ({1})'.format(image_id, name),
        'Will delete snapshot ' + snapshot, 'Dry run: nothing was removed']
    result = run(UNINSTALL, name, '-y')
    assert result.returncode == 0, result
    assert result.messages == []
    assert result.lines == [
        'Deregistered image {0} ({1})'.format(image_id, name),
        'Deleted snapshot ' + snapshot,
        'Uninstalled image {0} ({1})'.format(image_id, name)]
    assert image_id not in own_images(cloud)
    assert not snapshot_exists(cloud, snapshot)


def test_a_snapshot_another_image_boots_from_is_kept(
        run, install_cloud, cloud, tmpdir):
    store = 'http://store-{0}.example/'.format(uuid.uuid4().hex[:8])
    names = ['ebs-{0}-{1}'.format(which, uuid.uuid4().hex[:8])
             for which in ('first', 'second')]
    first, snapshot = ebs_backed_image(install_cloud, cloud, tmpdir,
                                       names[0], store)
    second, _ = ebs_backed_image(install_cloud, cloud, tmpdir, names[1],
                                 store, snapshot)
    result = run(UNINSTALL, first, '-y')
    assert result.returncode == 0, result
    assert result.lines[0] == (
        'Note: the snapshot of image {0} ({1}) ({2}) is left: image {3} '
        '({4}) boots from it too'.format(first, names[0], snapshot, second,
                                         names[1]))
    assert 'Deleted snapshot ' + snapshot not in result.lines
    assert snapshot_exists(cloud, snapshot)
    result = run(UNINSTALL, second, '-y')
    assert 'Deleted snapshot ' + snapshot in result.lines
    assert not snapshot_exists(cloud, snapshot)


def test_the_root_device_is_what_the_cloud_says_when_it_says_it():
    from eustore_plugin.install.installed import InstalledImage
    tags = [{'key': 'eustore:image', 'value': 'entry'},
            {'key': 'eustore:snapshot', 'value': 'snap-0000000000000tag'}]
    mapping = [{'deviceName': '/dev/sdb', 'ebs': {'snapshotId': 'snap-b'}},
               {'deviceName': '/dev/xvda', 'ebs': {'snapshotId': 'snap-a'}}]
    # AWS: the root device's mapping, over the tag; no manifest (its
    # imageLocation is account/name).
    aws = InstalledImage({'imageId': 'ami-1', 'rootDeviceType': 'ebs',
                          'rootDeviceName': '/dev/xvda',
                          'blockDeviceMapping': mapping, 'tagSet': tags,
                          'imageLocation': ACCOUNT + '/entry'})
    assert (aws.root_device_type, aws.snapshot, aws.manifest) == (
        'ebs', 'snap-a', None)
    # moto: "standard", and a mapping of its own making: the tag.
    moto = InstalledImage({'imageId': 'ami-2', 'rootDeviceType': 'standard',
                           'rootDeviceName': '/dev/xvda',
                           'blockDeviceMapping': mapping, 'tagSet': tags})
    assert (moto.root_device_type, moto.snapshot) == (
        'ebs', 'snap-0000000000000tag')
    # An instance-store image: its manifest, no snapshot.
    bundle = InstalledImage({'imageId': 'ami-3',
                             'rootDeviceType': 'instance-store',
                             'imageLocation': 'b/x.manifest.xml',
                             'tagSet': tags[:1]})
    assert (bundle.root_device_type, bundle.snapshot, bundle.manifest) == (
        'instance-store', None, 'b/x.manifest.xml')


def test_without_an_s3_endpoint_a_bundle_is_left_and_said(
        bucket, run, non_admin, cloud, store):
    # S3 is needed only for bundles: the image goes, its bundle stays.
    ids = installed_ids(run(INSTALL, '-i', store.catalog['fedora']['name'],
                            '-b', bucket, '-p', 'no-s3-fedora'))
    keys_before = objects(cloud, bucket)
    result = run(UNINSTALL, ids['image'], '-y', env={'S3_URL': ''})
    assert result.returncode == 0, result
    assert ('the bundle of image {0} (no-s3-fedora) ({1}/no-s3-fedora.'
            'manifest.xml) is left: no S3 endpoint is known (give --s3-url '
            'or set S3_URL)'.format(ids['image'], bucket)) in \
        result.stdout + result.stderr
    assert ids['image'] not in own_images(cloud)
    assert objects(cloud, bucket) == keys_before
