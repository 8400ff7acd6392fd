# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-install-image --ebs against moto on loopback, behind the recording,
fault-injecting proxy (EC2 and the EBS direct APIs at the same place, as
moto has them): every kind of store's whole-disk image written into a
snapshot, read back block for block with botocore's EBS client (an
independent reader) and compared with the source disk; each block's
checksum checked against its body; the RegisterImage request itself
checked (moto ignores its block device mapping, boot mode, ENA and IMDS
attributes, and makes up a mapping of its own); failures at each step,
interruptions and a killed run leave no snapshot and no image.
"""

from __future__ import absolute_import

import gzip
import io
import json
import os
import re
import signal
import tarfile
import time
import uuid

import pytest

from eustore_plugin.catalogs.catalog import CatalogImage
from eustore_plugin.cloud.ebs import BLOCK_SIZE, PROBE_SNAPSHOT
from eustore_plugin.install.plan import (InstallError, InstallOptions,
                                         build_plan)
from tests.support.commands import finish_command, start_command
from tests.support.ebs import (answer_the_access_check, aws_error,
                               b64_sha256, ebs_reader, expected_blocks,
                               is_block, is_completion, is_start,
                               put_block_requests, read_snapshot,
                               snapshot_ids)
from tests.support.images import image_bytes
from tests.support.install import (INSTALL, INTERRUPTED_AND_UNDONE, eucarc,
                                   store)
from tests.support.moto import which
from tests.support.publicstores import MIRROR_PRODUCT, MIRROR_VERSIONS

DESCRIBE = 'eustore-describe-installed'
UNINSTALL = 'eustore-uninstall-image'
GIB = 1024 ** 3
INSTALLED_RE = re.compile(r'^Installed new EBS-backed image (\S+) '
                          r'\(snapshot (snap-[0-9a-f]+)\)$')

# The install fixtures (tests/support/install.py), used here.
INSTALL_FIXTURES = (eucarc, store)

needs_disk_tools = pytest.mark.skipif(
    not (which('qemu-img') and which('xz')),
    reason='qemu-img and xz make and read the test disks: run scripts/setup '
    '(it installs qemu-utils and xz-utils)')


@pytest.fixture
def ebs_env(proxy):
    """What a user adds to a eucarc for the EBS direct APIs: their
    endpoint (moto's is its EC2's, behind the proxy)."""
    return {'EBS_URL': proxy.url}


@pytest.fixture
def run(cli, eucarc, ebs_env):
    """An eustore command with the eucarc sourced (the demo store's)."""
    def run(command, *args, **kwargs):
        env = dict(eucarc, **ebs_env)
        env.update(kwargs.pop('env', {}))
        return cli(command, *args, env=env, **kwargs)
    return run


@pytest.fixture
def reader(install_cloud):
    return ebs_reader(install_cloud)


def installed(result):
    """(image id, snapshot id) the install printed."""
    assert result.returncode == 0, result
    match = INSTALLED_RE.match(result.lines[-1])
    assert match, result
    return match.group(1), match.group(2)


def assert_snapshot_is(reader, proxy, snapshot_id, disk):
    """The snapshot holds ``disk``: its data blocks exact, its empty ones
    absent; each block was sent with the checksum of its body."""
    assert read_snapshot(reader, snapshot_id) == expected_blocks(disk)
    sent = put_block_requests(proxy)
    assert sent and all(headers['x-amz-checksum'] == b64_sha256(body)
                        for _, headers, body in sent)
    assert sorted(index for index, _, _ in sent) == sorted(
        expected_blocks(disk))


def registration(proxy):
    (call,) = proxy.form_requests('RegisterImage')
    return call


def nothing_left(proxy, cloud, before):
    """No image registered stays, and no snapshot this run made."""
    assert snapshot_ids(cloud) == before
    for call in proxy.form_requests('RegisterImage'):
        assert not cloud.images_named(call['Name'])
    return True


def sparse_tarball(path, disk, name='sparse-disk'):
    """An HVM tarball (no kernel) of ``disk``, as -t takes one."""
    with open(path, 'wb') as raw:
        with gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode='w') as tar:
                info = tarfile.TarInfo(name + '/' + name + '.img')
                info.size = len(disk)
                tar.addfile(info, io.BytesIO(disk))
    return path


def sparse_disk():
    """Data, three empty blocks, data, an empty block, a short tail."""
    data = image_bytes(BLOCK_SIZE, seed=7)
    zeros = b'\0' * BLOCK_SIZE
    return b'\x01' + data[1:] + zeros * 3 + b'\x02' + data[1:] + zeros + \
        b'\x03' * 1000


# ---------------------------------------------------- every kind of store

def test_a_store_tarball_becomes_an_ebs_backed_image(run, store, proxy,
                                                     reader, cloud,
                                                     demo_store_dir):
    entry = store.catalog['fedora']
    image_id, snapshot = installed(run(INSTALL, '-i', entry['name'],
                                       '--ebs', '--pad-name'))
    disk = demo_disk(demo_store_dir, entry)
    assert_snapshot_is(reader, proxy, snapshot, disk)
    call = registration(proxy)
    assert call['Name'].endswith('-ebs')
    assert (call['RootDeviceName'], call['VirtualizationType'],
            call['Architecture']) == ('/dev/xvda', 'hvm', 'x86_64')
    assert dict((key[len('BlockDeviceMapping.1.'):], value)
                for key, value in call.items()
                if key.startswith('BlockDeviceMapping.')) == {
        'DeviceName': '/dev/xvda', 'Ebs.SnapshotId': snapshot,
        'Ebs.VolumeSize': '1', 'Ebs.VolumeType': 'gp3',
        'Ebs.DeleteOnTermination': 'true'}
    assert (call['BootMode'], call['EnaSupport'], call['ImdsSupport']) == (
        'legacy-bios', 'true', 'v2.0')
    assert 'ImageLocation' not in call and 'KernelId' not in call
    # No bucket, no bundle: S3 was never asked anything.
    assert not [path for method, path, _ in proxy.requests
                if path.startswith('/') and method in ('PUT', 'GET', 'HEAD')
                and not path.startswith('/snapshots')]
    tags = tags_of_image(cloud, image_id)
    assert tags['eustore:snapshot'] == snapshot
    assert tags['eustore:image'] == entry['name']


def demo_disk(demo_store_dir, entry):
    with tarfile.open(os.path.join(demo_store_dir, entry['url'])) as tar:
        (member,) = tar.getmembers()
        return tar.extractfile(member).read()


def tags_of_image(cloud, image_id):
    (item,) = cloud.describe_images(owner='self',
                                    filters={'image-id': [image_id]})
    return dict((tag['key'], tag['value']) for tag in item['tagSet'])


@needs_disk_tools
def test_a_simplestreams_qcow2_disk_becomes_an_ebs_backed_image(
        cli, mirror, trusted, env, ebs_env, proxy, reader):
    image_id, snapshot = installed(cli(
        INSTALL, '-i', MIRROR_PRODUCT, '--ebs', '--pad-name', *trusted,
        env=dict(env(mirror.url), **ebs_env)))
    # qemu-img's raw disk, block for block.
    assert_snapshot_is(reader, proxy, snapshot,
                       mirror.content.disks[MIRROR_VERSIONS[-1]])
    assert registration(proxy)['BlockDeviceMapping.1.Ebs.SnapshotId'] == \
        snapshot


@needs_disk_tools
def test_a_virt_builder_xz_disk_becomes_an_ebs_backed_image(
        cli, builder, trusted, env, ebs_env, proxy, reader):
    image_id, snapshot = installed(cli(
        INSTALL, '-i', 'fedora-39', '-a', 'arm64', '--ebs', '--pad-name',
        *trusted, env=dict(env(builder.url), **ebs_env)))
    assert_snapshot_is(reader, proxy, snapshot, builder.content.disks['arm'])
    call = registration(proxy)
    # 64-bit ARM boots UEFI only.
    assert (call['Architecture'], call['BootMode']) == ('arm64', 'uefi')


def test_a_local_sparse_tarball_skips_its_empty_blocks(run, proxy, reader,
                                                       tmpdir):
    disk = sparse_disk()
    path = sparse_tarball(str(tmpdir.join('sparse.tgz')), disk)
    image_id, snapshot = installed(run(
        INSTALL, '-t', path, '-s', 'a sparse disk', '-a', 'x86_64', '--ebs',
        '--pad-name', '--volume-size', '3', '--volume-type', 'gp2',
        '--boot-mode', 'uefi-preferred', '--no-ena', '--imds-support',
        'optional', '--root-device-name', '/dev/sda1',
        '--upload-concurrency', '2'))
    assert_snapshot_is(reader, proxy, snapshot, disk)
    assert sorted(index for index, _, _ in put_block_requests(proxy)) == \
        [0, 4, 6]
    start = [json.loads(body.decode('utf-8'))
             for method, path, body in proxy.requests
             if is_start(method, path, body)]
    assert [document['VolumeSize'] for document in start] == [3]
    call = registration(proxy)
    assert (call['RootDeviceName'], call['BlockDeviceMapping.1.DeviceName'],
            call['BlockDeviceMapping.1.Ebs.VolumeSize'],
            call['BlockDeviceMapping.1.Ebs.VolumeType'],
            call['BootMode']) == ('/dev/sda1', '/dev/sda1', '3', 'gp2',
                                  'uefi-preferred')
    assert 'EnaSupport' not in call and 'ImdsSupport' not in call


def test_json_names_the_image_and_its_snapshot(run, store):
    entry = store.catalog['fedora']
    result = run(INSTALL, '-i', entry['name'], '--ebs', '--pad-name',
                 '--json')
    assert result.returncode == 0, result
    document = json.loads(result.stdout)
    assert document['root_device_type'] == 'ebs'
    assert re.match(r'^snap-[0-9a-f]+$', document['snapshot'])
    assert list(document['ids']) == ['machine']
    assert document['names']['machine'].endswith('-ebs')
    assert document['reused'] is False
    assert document['source']['image'] == entry['name']


# -------------------------------------------------------------- refusals

def test_a_paravirtual_image_is_refused_in_one_line(run, store, proxy,
                                                    cloud):
    # The catalog does not say; the tarball's kernel does, as it streams
    # by (after its filesystem image, which was written, then deleted).
    before = snapshot_ids(cloud)
    result = run(INSTALL, '-i', store.catalog['centos']['name'], '--ebs')
    assert result.returncode == 1
    (line,) = result.messages
    assert line.startswith(
        'eustore-install-image: error: {0} is a paravirtual image (a '
        'kernel, a ramdisk and a filesystem image), and an EBS-backed image '
        'boots a whole disk: install it without --ebs'.format(
            store.catalog['centos']['name']))
    assert nothing_left(proxy, cloud, before)
    assert not proxy.form_requests('RegisterImage')


def test_a_catalog_saying_paravirtual_is_refused_by_the_plan():
    # Before anything is read or made: the plan is the install's first
    # look at the entry.
    entry = CatalogImage({'name': 'pv', 'url': 'pv.tgz', 'architecture':
                          'x86_64', 'virtualization_type': 'paravirtual'},
                         'http://store.example/')
    with pytest.raises(InstallError) as raised:
        build_plan(InstallOptions(image_name='pv', ebs=True), entry,
                   'http://store.example/')
    assert str(raised.value).startswith('pv is a paravirtual image')
    assert str(raised.value).endswith('install it without --ebs')


@pytest.mark.parametrize('args, says', [
    (['-b', 'bundles'], '-b/--bucket: an EBS-backed image (--ebs) has no '
     'bundles; leave it out'),
    (['--acl', 'private'], '--acl: an EBS-backed image'),
    (['--virtualization-type', 'paravirtual'], '--ebs installs HVM images '
     'only'),
    (['--volume-size', '0'], '--volume-size is in GiB: at least 1, at most '
     '16384 for a gp3 volume'),
    (['--volume-size', '1025', '--volume-type', 'standard'],
     'at most 1024 for a standard volume'),
    (['--volume-type', 'io1'], "invalid choice: 'io1'")])
def test_options_of_the_other_target_are_usage_errors(run, store, args,
                                                      says):
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 *args)
    assert result.returncode == 2, result
    assert says in result.stderr
    assert 'Traceback' not in result.stderr


def test_ebs_options_without_ebs_are_usage_errors(run, store):
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '-b', 'b1',
                 '--boot-mode', 'uefi')
    assert result.returncode == 2, result
    assert '--boot-mode go with --ebs' in result.stderr
    result = run(INSTALL, '-i', store.catalog['fedora']['name'])
    assert result.returncode == 2, result
    assert '-b/--bucket is required' in result.stderr


def test_a_cloud_without_the_apis_is_told_what_to_do(run, store, proxy):
    # Eucalyptus: an EC2 that is not AWS's, and no EBS endpoint given.
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 env={'EBS_URL': ''})
    assert result.returncode == 1
    (line,) = result.messages
    assert 'no endpoint of the EBS direct APIs is known' in line
    assert 'install without --ebs' in line and '--ebs-url' in line
    # Said before the store was read.
    assert '/' + store.catalog['fedora']['url'] not in \
        store.paths_requested()


def test_a_volume_too_small_is_said_and_undone(run, proxy, cloud, tmpdir):
    before = snapshot_ids(cloud)
    path = str(tmpdir.join('big.img'))
    with open(path, 'wb') as raw:
        raw.seek(GIB + BLOCK_SIZE)
        raw.write(b'\x01')
    tarball = str(tmpdir.join('big.tgz'))
    with tarfile.open(tarball, 'w:gz') as tar:
        tar.add(path, 'big/big.img')
    result = run(INSTALL, '-t', tarball, '-s', 'big', '-a', 'x86_64',
                 '--ebs', '--volume-size', '1')
    assert result.returncode == 1
    (line,) = result.messages
    assert 'a volume of 1 GiB cannot hold the image' in line
    # Said before a snapshot was started.
    assert not [request for request in proxy.requests
                if is_start(*request)]
    assert nothing_left(proxy, cloud, before)


# ---------------------------------------------------------- undoing it all

FAILURES = {
    'StartSnapshot': (is_start, 400, aws_error(
        'ValidationException', 'bad volume size')),
    'a block': (is_block(0), 400, aws_error(
        'ValidationException', 'The checksum does not match.')),
    'CompleteSnapshot': (is_completion, 400, aws_error(
        'ValidationException', 'The checksum does not match.')),
}


@pytest.mark.parametrize('step', sorted(FAILURES) + ['RegisterImage'])
def test_a_failure_at_each_step_leaves_nothing(run, store, proxy, cloud,
                                               step):
    before = snapshot_ids(cloud)
    if step == 'RegisterImage':
        proxy.fail(lambda method, path, body: b'Action=RegisterImage' in
                   body, status=400)
    else:
        predicate, status, answer = FAILURES[step]
        proxy.fail(predicate, status=status, answer=answer)
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 '--pad-name')
    assert result.returncode == 1, result
    (line,) = result.messages
    assert 'Traceback' not in result.stderr
    if step != 'StartSnapshot':
        assert line.endswith('what this run uploaded or registered was '
                             'removed')
    assert nothing_left(proxy, cloud, before)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_install_removes_its_snapshot(
        eucarc, ebs_env, user_env, proxy, cloud, store, signum):
    before = snapshot_ids(cloud)
    held = proxy.hold(is_block(0))
    proc = start_command(INSTALL, ['-i', store.catalog['fedora']['name'],
                                   '--ebs', '--pad-name'],
                         dict(user_env, **dict(eucarc, **ebs_env)))
    try:
        assert held.arrived.wait(60)
        proc.send_signal(signum)
        time.sleep(0.2)
        held.release()
        result = finish_command(proc)
    finally:
        held.release()
    assert result.returncode == 128 + signum
    assert result.messages == [INTERRUPTED_AND_UNDONE]
    assert nothing_left(proxy, cloud, before)


def test_a_killed_install_is_undone_by_the_next(run, eucarc, ebs_env,
                                                user_env, proxy, cloud,
                                                store):
    before = snapshot_ids(cloud)
    held = proxy.hold(is_block(0))
    proc = start_command(INSTALL, ['-i', store.catalog['fedora']['name'],
                                   '--ebs', '-p', 'killed-ebs'],
                         dict(user_env, **dict(eucarc, **ebs_env)))
    assert held.arrived.wait(60)
    proc.kill()
    proc.communicate()
    held.release(forward=False)
    (killed,) = snapshot_ids(cloud) - before
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 '-p', 'killed-ebs')
    image_id, snapshot = installed(result)
    (warning,) = result.messages
    assert 'had left snapshot {0}'.format(killed) in warning
    # (moto makes a snapshot of its own for each image it registers.)
    assert killed not in snapshot_ids(cloud)
    assert snapshot in snapshot_ids(cloud)


# ------------------------------------------ dry run, reuse, and after it

def test_a_dry_run_checks_the_apis_and_says_what_it_would_do(run, store,
                                                             proxy, cloud):
    before = snapshot_ids(cloud)
    answer_the_access_check(proxy)
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 '--dry-run')
    assert result.returncode == 0, result
    assert any(line.startswith('OK\tebs\t') and
               'take your keys' in line for line in result.lines), result
    # Only EC2 is opened (no bucket, no kernels): nothing missing is said.
    (cloud_line,) = [line for line in result.lines
                     if line.startswith('OK\tcloud\t')]
    assert 'IAM' not in cloud_line and 'S3' not in cloud_line
    would = [line for line in result.lines if line.startswith('Would')]
    assert would[1].startswith('Would write the disk into a new snapshot')
    assert would[2].startswith('Would register EBS-backed image ')
    assert 'boot mode legacy-bios (the default)' in would[2]
    # The harmless call, and nothing else of the APIs.
    assert [path for method, path, _ in proxy.requests
            if path.startswith('/snapshots')] == [
        '/snapshots/completion/' + PROBE_SNAPSHOT]
    assert snapshot_ids(cloud) == before
    assert not proxy.form_requests('RegisterImage')


def test_a_dry_run_without_the_apis_lists_it_with_the_rest(run, store):
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 '--dry-run', env={'EBS_URL': ''})
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    (failed,) = [line for line in result.lines + result.messages
                 if 'no endpoint of the EBS direct APIs' in line]
    assert 'install without --ebs' in failed
    # The rest was still checked and said.
    assert any(line.startswith('Would register EBS-backed image ')
               for line in result.lines), result


def test_a_dry_run_says_keys_without_the_right(run, store, proxy):
    proxy.fail(lambda method, path, body: path.startswith(
        '/snapshots/completion/'), status=403, answer=aws_error(
        'AccessDeniedException', 'not authorized'))
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 '--dry-run')
    assert result.returncode == 1
    assert 'ebs:CompleteSnapshot' in result.stdout + result.stderr


def test_reuse_finds_only_an_image_of_its_own_kind(run, store, proxy,
                                                   install_args, cloud):
    name = 'reuse-' + uuid.uuid4().hex[:8]
    entry = store.catalog['fedora']
    ebs_id, _ = installed(run(INSTALL, '-i', entry['name'], '--ebs', '-p',
                              name))
    # The same entry as an instance-store image: another image.
    bundle = run(INSTALL, '-i', entry['name'], '-b', name, '-p', name,
                 *install_args)
    assert bundle.returncode == 0, bundle
    assert bundle.lines[-1].startswith('Installed new image ')
    assert ebs_id not in bundle.lines[-1]
    # And the EBS-backed one again: reused.
    again = run(INSTALL, '-i', entry['name'], '--ebs', '-p', name, '-y')
    assert again.returncode == 0, again
    assert again.lines == ['Reused installed image ' + ebs_id]
    document = json.loads(run(INSTALL, '-i', entry['name'], '--ebs', '-p',
                              name, '-y', '--json').stdout)
    assert (document['reused'], document['ids'], document['names'],
            document['root_device_type']) == (
        True, {'machine': ebs_id}, {'machine': name + '-ebs'}, 'ebs')
    assert document['snapshot'] == tags_of_image(cloud, ebs_id)[
        'eustore:snapshot']


@pytest.mark.parametrize('s3', ['S3 known', 'no S3'])
def test_it_is_listed_and_uninstalled_with_its_snapshot(run, store, cloud,
                                                        s3):
    # Neither install nor uninstall needs S3 for an EBS-backed image.
    without_s3 = {'S3_URL': ''} if s3 == 'no S3' else {}
    name = 'listed-' + uuid.uuid4().hex[:8]
    image_id, snapshot = installed(run(
        INSTALL, '-i', store.catalog['fedora']['name'], '--ebs', '-p', name,
        env=without_s3))
    listing = json.loads(run(DESCRIBE, '--json').stdout)
    (entry,) = [item for item in listing if item['id'] == image_id]
    assert (entry['root_device_type'], entry['snapshot']) == ('ebs',
                                                              snapshot)
    result = run(UNINSTALL, image_id, '-y', env=without_s3)
    assert result.returncode == 0, result
    assert 'Deleted snapshot ' + snapshot in result.lines
    assert snapshot not in snapshot_ids(cloud)
    assert not cloud.images_named(name + '-ebs')


def test_no_bundling_keys_are_needed(run, store):
    # No bundling: no certificate, key or account id is asked for.
    result = run(INSTALL, '-i', store.catalog['fedora']['name'], '--ebs',
                 '--pad-name', env={'EC2_CERT': '', 'EC2_PRIVATE_KEY': '',
                                    'EUCALYPTUS_CERT': '', 'EC2_USER_ID': ''})
    installed(result)
