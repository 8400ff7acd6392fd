# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A hostile or broken image store cannot hurt the user (issue 9,
docs/threat-model.md): nothing local read or touched, nothing of theirs
removed, every resource bounded, nothing raw on their terminal.

Each test runs the commands as a user does, against tests/support/
hostile.py's store on loopback (or on this machine's outside address, for
the rules about loopback), moto's S3/EC2/IAM behind a recording proxy, and
asserts what is on disk, in S3 and in EC2 afterwards.
"""

from __future__ import absolute_import

import hashlib
import json
import os
import os.path
import re
import signal
import stat
import subprocess
import sys
import time
import uuid

import pytest
from requestbuilder.config import ConfigData, ConfigView

from eustore_plugin.cloud.services import CloudError
from eustore_plugin.images.layout import LayoutError, analyze, catalog_fields
from eustore_plugin.install.euca2oolstarget import _FEEDER
from eustore_plugin.limits import SizeLimit
from eustore_plugin.store.download import DownloadStream, IntegrityError
from eustore_plugin.store.service import EustoreService
from eustore_plugin.suite import uses_euca2ools
from eustore_plugin.values import parse_utc
from tests.support.commands import GNU_TIME, run_measured
from tests.support.demostore import TARBALLS
from tests.support.gpg import missing_tools
from tests.support.hostile import (CLEAR, RAW_CONTROLS, RETURN, TITLE,
                                   HostileStore, RunningCommand, deep_json,
                                   device_member, entry, file_member,
                                   gzip_bomb, link_member, outside_address,
                                   pax_bomb, products_bomb, template,
                                   virt_builder_index, write_catalog,
                                   write_signed_catalog, write_tarball,
                                   xz_of_zeros)
from tests.support.http import StoreServer, header
from tests.support.install import (INTERRUPTED_AND_UNDONE, eucarc,
                                   fetch_and_decode, install, installed_ids,
                                   store)
from tests.support.moto import direct_cloud, which

# The install fixtures (tests/support/install.py): the demo store and the
# user's eucarc (the cloud, its proxy and the admin come from conftest.py).
INSTALL_FIXTURES = (eucarc, install, store)

DESCRIBE = 'eustore-describe-images'
INSTALL = 'eustore-install-image'
CHECK = 'eustore-check-store'
PUBLISH = 'eustore-publish-image'
WITHDRAW = 'eustore-withdraw-image'
FEDORA = 'images/' + TARBALLS['fedora']
CENTOS = 'images/' + TARBALLS['centos']

needs_gpg = pytest.mark.skipif(bool(missing_tools()), reason=(
    'gpg and gpgv are needed to sign and check catalogs: run scripts/setup '
    '(it installs the gnupg and gpgv packages)'))
streamed_only = pytest.mark.skipif(uses_euca2ools(), reason=(
    'with euca2ools the tarball is downloaded whole before anything is '
    'created in the cloud'))


# ----------------------------------------------------------------- helpers

@pytest.fixture
def hostile(tmpdir):
    """A hostile store on loopback, serving the directory ``root``."""
    server = HostileStore(str(tmpdir.mkdir('hostile'))).start()
    yield server
    server.stop()


@pytest.fixture
def far_store(tmpdir):
    """A hostile store on this machine's outside address: "elsewhere"."""
    address = outside_address()
    if address is None:
        pytest.skip('this machine has no address but loopback')
    server = HostileStore(str(tmpdir.mkdir('far')), host=address).start()
    yield server
    server.stop()


@pytest.fixture
def cloud_s3(public_cloud):
    """The stores' object storage itself, to look and tidy."""
    return direct_cloud(public_cloud)


@pytest.fixture
def local_service(demo_store_dir):
    """A service on the user's loopback that must never be read (it holds
    an installable tarball, so a read would show)."""
    server = StoreServer(demo_store_dir).start()
    yield server
    server.stop()


def demo_bytes(demo_store_dir, relative):
    with open(os.path.join(demo_store_dir, relative), 'rb') as tarball:
        return tarball.read()


def copy_demo(demo_store_dir, root, relative):
    """A demo tarball in a hostile store's directory; returns its bytes."""
    data = demo_bytes(demo_store_dir, relative)
    target = os.path.join(root, relative)
    if not os.path.isdir(os.path.dirname(target)):
        os.makedirs(os.path.dirname(target))
    with open(target, 'wb') as out:
        out.write(data)
    return data


def puts(proxy):
    return [path for method, path, _ in proxy.requests if method == 'PUT']


def one_line(result, fragment):
    """The command failed with exactly one line, holding ``fragment``."""
    assert result.returncode == 1, result
    messages = result.messages
    assert len(messages) == 1, result
    assert 'Traceback' not in result.stderr
    assert fragment in messages[0], result
    return messages[0]


def no_raw_controls(*texts):
    for text in texts:
        for char in RAW_CONTROLS:
            assert char not in text, (char, text)


def snapshot(path):
    """What a file (or symlink) is: type, mode, content or target."""
    status = os.lstat(path)
    if stat.S_ISLNK(status.st_mode):
        return ('link', os.readlink(path))
    with open(path, 'rb') as data:
        return ('file', stat.S_IMODE(status.st_mode), data.read())


def tree(path):
    """Every file under ``path``, relative, with its content."""
    found = {}
    for where, _, files in os.walk(path):
        for name in files:
            full = os.path.join(where, name)
            if os.path.islink(full):
                found[os.path.relpath(full, path)] = 'link'
                continue
            with open(full, 'rb') as data:
                found[os.path.relpath(full, path)] = data.read()
    return found


def bucket_gone(cloud, bucket):
    with pytest.raises(CloudError) as gone:
        cloud.list_keys(bucket)
    return gone.value.status_code == 404


def journals(user_env):
    directory = os.path.join(user_env['HOME'], '.local', 'state', 'eustore',
                             'installs')
    if not os.path.isdir(directory):
        return []
    return sorted(os.listdir(directory))


def wait_until(condition, what, timeout=60):
    """Poll ``condition`` until true (AssertionError after ``timeout``: the
    test hangs otherwise, it measures nothing)."""
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError('{0} never happened'.format(what))
        time.sleep(0.05)


def registering(name=None):
    """A proxy predicate: RegisterImage (of ``name``, if given)."""
    def predicate(method, path, body):
        if b'Action=RegisterImage' not in body:
            return False
        return name is None or ('Name=' + name + '&').encode() in \
            body + b'&'
    return predicate


# ======================================================================
# A remote catalog cannot read local files or local services
# (docs/threat-model.md, "local files and local services")

def test_a_remote_catalog_cannot_name_local_files(install, cli, hostile,
                                                  non_admin, proxy, tmpdir,
                                                  demo_store_dir):
    secret = tmpdir.join('id_rsa')
    secret.write_binary(b'-----BEGIN OPENSSH PRIVATE KEY----- not yours')
    secret.chmod(0o600)
    local_tgz = os.path.join(demo_store_dir, FEDORA)
    write_catalog(hostile.root, [
        entry('key-thief', 'file://' + str(secret),
              data=secret.read_binary()),
        entry('local-tarball', 'file://' + local_tgz,
              data=demo_bytes(demo_store_dir, FEDORA))])
    keep = tmpdir.mkdir('keep')
    for name in ('key-thief', 'local-tarball'):
        result = install('-i', name, '-b', 'thief-bundles', '-d', str(keep),
                         '-U', hostile.url)
        one_line(result, 'refusing image "{0}" at file://'.format(name))
        assert 'a catalog read over the network may not name a local ' \
            'file' in result.stderr
    # Nothing copied into -d, nothing uploaded or registered.
    assert os.listdir(str(keep)) == []
    assert puts(proxy) == []
    assert not proxy.form_requests('RegisterImage')
    assert snapshot(str(secret))[1] == 0o600
    # check-store does not read them either: no digest of the key.
    check = cli(CHECK, '-U', hostile.url)
    assert check.returncode == 1
    digest = hashlib.sha256(secret.read_binary()).hexdigest()
    assert digest not in check.stdout + check.stderr
    assert [line.split('\t')[:2] for line in check.lines] == [
        ['FAILED', 'key-thief'], ['FAILED', 'local-tarball']]
    assert all('may not name a local file' in line for line in check.lines)


def test_a_local_catalog_naming_a_fifo_does_not_hang(user_env, tmpdir):
    store_dir = tmpdir.mkdir('local-store')
    store_dir.mkdir('images')
    fifo = str(store_dir.join('images', 'fifo.tgz'))
    os.mkfifo(fifo)
    write_catalog(str(store_dir), [entry('fifo', 'images/fifo.tgz',
                                         size=100)])
    check = RunningCommand(CHECK, ['-U', str(store_dir)], user_env)
    assert check.finish(timeout=60) == 1
    assert 'it is not a regular file' in check.stdout
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize('how', [
    'loopback', 'localhost', 'metadata', 'redirect-to-loopback',
    'redirect-to-metadata', 'redirect-to-file'])
def test_a_store_elsewhere_cannot_reach_local_services(
        install, cli, far_store, local_service, non_admin, proxy, how,
        demo_store_dir):
    data = demo_bytes(demo_store_dir, FEDORA)
    service_url = '{0}{1}'.format(local_service.url, FEDORA)
    targets = {
        'loopback': service_url,
        'localhost': service_url.replace('127.0.0.1', 'localhost'),
        'metadata': 'http://169.254.169.254/latest/meta-data/fedora.tgz',
        'redirect-to-loopback': 'redirect/loopback.tgz',
        'redirect-to-metadata': 'redirect/metadata.tgz',
        'redirect-to-file': 'redirect/file.tgz'}
    far_store.redirect('/redirect/loopback.tgz', service_url)
    far_store.redirect('/redirect/metadata.tgz',
                       'http://169.254.169.254/latest/meta-data/')
    far_store.redirect('/redirect/file.tgz',
                       'file://' + os.path.join(demo_store_dir, FEDORA))
    write_catalog(far_store.root, [entry('victim', targets[how], data=data)])
    result = install('-i', 'victim', '-b', 'ssrf-bundles', '-U',
                     far_store.url)
    loopback = 'is a loopback address and the store is not on one'
    metadata = 'is a cloud metadata address, which a store may never name'
    rule = {'loopback': loopback, 'localhost': loopback,
            'metadata': metadata, 'redirect-to-loopback': loopback,
            'redirect-to-metadata': metadata,
            # requests itself has no way to follow it (no adapter for
            # file://), so this one is not the policy's refusal.
            'redirect-to-file': 'redirect/file.tgz'}[how]
    line = one_line(result, rule)
    if how.startswith('redirect-to-l') or how.startswith('redirect-to-m'):
        assert '(redirected from {0}redirect/'.format(far_store.url) in line
    check = cli(CHECK, '-U', far_store.url)
    assert check.returncode == 1
    assert check.lines[0].startswith('FAILED\tvictim\t')
    assert rule in check.lines[0]
    # The local service never saw a request; the cloud got nothing.
    assert local_service.requests == []
    assert puts(proxy) == []
    assert not proxy.form_requests('RegisterImage')


# ======================================================================
# -d DIR is the user's directory

@pytest.mark.parametrize('catalog', ['sha256', 'no-checksum', 'mismatch'])
def test_the_directory_given_with_d_is_left_as_it_was(
        install, hostile, non_admin, proxy, cloud, demo_store_dir, tmpdir,
        catalog):
    data = copy_demo(demo_store_dir, hostile.root, FEDORA)
    image = entry('fedora', FEDORA, data=data)
    if catalog == 'no-checksum':
        del image['sha256'], image['size']
    if catalog == 'mismatch':
        image['sha256'] = hashlib.sha256(b'another file').hexdigest()
    write_catalog(hostile.root, [image])
    shared = tmpdir.mkdir('shared')
    victim = tmpdir.join('victim')
    victim.write_binary(b'somebody else\'s file\n')
    victim.chmod(0o600)
    basename = os.path.basename(FEDORA)
    planted = {basename: (b'my own tarball, not the store\'s', 0o640),
               'notes.txt': (b'unrelated\n', 0o644)}
    for name, (content, mode) in planted.items():
        shared.join(name).write_binary(content)
        shared.join(name).chmod(mode)
    os.symlink(str(victim), str(shared.join(basename + '.part')))
    before = dict((name, snapshot(str(shared.join(name))))
                  for name in os.listdir(str(shared)))
    victim_before = snapshot(str(victim))

    result = install('-i', 'fedora', '-b', 'shared-bundles', '-p',
                     'shared-' + catalog, '-d', str(shared), '-U',
                     hostile.url)
    if catalog == 'mismatch':
        one_line(result, 'is not the one the store describes')
        assert not proxy.form_requests('RegisterImage')
    else:
        assert list(installed_ids(result)) == ['image']
    after = dict((name, snapshot(str(shared.join(name))))
                 for name in os.listdir(str(shared)) if name !=
                 'eustore-install')
    assert after == before
    assert snapshot(str(victim)) == victim_before
    # The tool's own directory: owner-only, marked, the tarball kept in it
    # when it was the catalog's.
    work = shared.join('eustore-install')
    assert stat.S_IMODE(os.lstat(str(work)).st_mode) == 0o700
    kept = os.listdir(str(work.join('downloads')))
    if catalog == 'mismatch':
        assert kept == []
    else:
        (name,) = kept
        with open(str(work.join('downloads', name)), 'rb') as tarball:
            assert tarball.read() == data


def test_a_work_directory_someone_else_made_is_not_used(
        install, hostile, non_admin, proxy, demo_store_dir, tmpdir):
    data = copy_demo(demo_store_dir, hostile.root, FEDORA)
    write_catalog(hostile.root, [entry('fedora', FEDORA, data=data)])
    shared = tmpdir.mkdir('shared')
    planted = shared.mkdir('eustore-install')
    planted.join('downloads').write_binary(b'not a directory of ours')
    result = install('-i', 'fedora', '-b', 'planted-bundles', '-d',
                     str(shared), '-U', hostile.url)
    one_line(result, 'was not made by eustore-install-image')
    assert tree(str(shared)) == {
        os.path.join('eustore-install', 'downloads'):
            b'not a directory of ours'}
    assert puts(proxy) == []


def test_a_download_killed_with_kill_9_is_resumed(
        install, user_env, eucarc, hostile, non_admin, proxy, cloud,
        demo_store_dir, tmpdir):
    data = copy_demo(demo_store_dir, hostile.root, FEDORA)
    write_catalog(hostile.root, [entry('fedora', FEDORA, data=data)])
    hostile.hold('/' + FEDORA, data, held=len(data) // 2)
    keep = tmpdir.mkdir('keep')
    downloads = keep.join('eustore-install', 'downloads')
    args = ['-i', 'fedora', '-b', 'killed-bundles', '-p', 'killed-fedora',
            '-d', str(keep), '-U', hostile.url]
    run = RunningCommand(INSTALL, args, dict(user_env, **eucarc))
    wait_until(lambda: downloads.check() and [
        name for name in os.listdir(str(downloads))
        if name.endswith('.part') and
        os.path.getsize(str(downloads.join(name))) > 0], 'a .part')
    run.proc.kill()
    assert run.finish() == -signal.SIGKILL
    (part,) = [name for name in os.listdir(str(downloads))
               if name.endswith('.part')]
    assert stat.S_IMODE(os.lstat(str(downloads.join(part))).st_mode) == 0o600
    held = os.path.getsize(str(downloads.join(part)))
    # The next run resumes it, with If-Range: nothing in the way.
    del hostile.faults['/' + FEDORA]
    assert list(installed_ids(install(*args))) == ['image']
    resumed = [headers for _, path, headers in hostile.requests
               if path == '/' + FEDORA][-1]
    assert header(resumed, 'Range') == 'bytes={0}-'.format(held)
    assert header(resumed, 'If-Range')
    (kept,) = os.listdir(str(downloads))
    with open(str(downloads.join(kept)), 'rb') as tarball:
        assert tarball.read() == data


def test_an_install_killed_with_kill_9_is_undone_by_the_next(
        install, user_env, eucarc, admin, proxy, cloud, store, tmpdir):
    image = store.catalog['centos']
    keep = tmpdir.mkdir('keep')
    args = ['-i', image['name'], '-b', 'kill9-bundles', '-p', 'kill9-centos',
            '-d', str(keep)]
    held = proxy.hold(registering('kill9-centos'))
    run = RunningCommand(INSTALL, args, dict(user_env, **eucarc))
    assert held.arrived.wait(120), run.stderr
    run.proc.kill()
    assert run.finish() == -signal.SIGKILL
    held.release(forward=False)  # it died before RegisterImage got out
    left_images = dict((name, [found['imageId'] for found in
                               cloud.images_named(name)])
                       for name in ('kill9-centos-kernel',
                                    'kill9-centos-ramdisk'))
    assert all(len(ids) == 1 for ids in left_images.values())
    left_keys = set(cloud.list_keys('kill9-bundles'))
    assert left_keys and len(journals(user_env)) == 1
    runs = keep.join('eustore-install', 'runs')
    (dead_run,) = os.listdir(str(runs))
    # A run directory older than a starting run's grace period is dead.
    old = time.time() - 3600
    os.utime(str(runs.join(dead_run)), (old, old))

    first = len(proxy.requests)
    result = install(*args)
    ids = installed_ids(result)
    assert len(ids) == 3
    notice = [line for line in result.messages
              if 'an install interrupted at' in line]
    assert len(notice) == 1 and notice[0].endswith('; removed')
    for found in left_images.values():
        assert 'image {0}'.format(found[0]) in notice[0]
    # The killed run's images are gone by id, its objects by key; the new
    # run's are all that is left.
    deregistered = [call['ImageId'] for call in
                    proxy.form_requests('DeregisterImage')]
    assert sorted(deregistered) == sorted(
        found[0] for found in left_images.values())
    for role in ('kernel', 'ramdisk'):
        assert [found['imageId'] for found in cloud.images_named(
            'kill9-centos-' + role)] == [ids[role]]
    later = proxy.requests[first:]
    deleted = set(path.split('/', 2)[2] for method, path, _ in later
                  if method == 'DELETE' and path.count('/') >= 2)
    assert left_keys <= deleted
    put_now = set(path.split('/', 2)[2] for method, path, _ in later
                  if method == 'PUT' and path.startswith('/kill9-bundles/'))
    assert set(cloud.list_keys('kill9-bundles')) == put_now
    assert journals(user_env) == []
    assert dead_run not in os.listdir(str(runs))


# ======================================================================
# Rollback removes only what this run created, by identity

def test_an_image_named_like_this_installs_kernel_is_left_alone(
        install, admin, proxy, cloud, store):
    theirs = cloud.register_image(
        Name='byname-centos-kernel', Architecture='x86_64',
        ImageLocation='earlier-bundles/byname-centos-kernel.manifest.xml')
    result = install('-i', store.catalog['centos']['name'], '-b',
                     'byname-bundles', '-p', 'byname-centos')
    one_line(result, 'an image named byname-centos-kernel is already '
                     'registered ({0})'.format(theirs))
    # Found before anything was uploaded; theirs is still there.
    assert puts(proxy) == []
    assert not proxy.form_requests('DeregisterImage')
    assert [found['imageId'] for found in
            cloud.images_named('byname-centos-kernel')] == [theirs]


def test_rollback_leaves_a_concurrent_installs_images(install, admin, proxy,
                                                      cloud, store):
    concurrent = {}

    def machine_registration(method, path, body):
        if not registering('identity-centos')(method, path, body):
            return False
        # Meanwhile another install registered images of the same names
        # (clouds that do not refuse duplicate names exist), with bundles
        # of its own; then this run's machine registration fails.
        cloud.create_bucket('concurrent-bundles')
        for role in ('kernel', 'ramdisk'):
            name = 'identity-centos-' + role
            cloud.put_object('concurrent-bundles', name + '.manifest.xml',
                             b'<manifest/>')
            concurrent[role] = cloud.register_image(
                Name=name, Architecture='x86_64',
                ImageLocation='concurrent-bundles/' + name + '.manifest.xml')
        return True
    proxy.fail(machine_registration, status=400, times=1)
    result = install('-i', store.catalog['centos']['name'], '-b',
                     'identity-bundles', '-p', 'identity-centos')
    one_line(result, 'what this run uploaded or registered was removed')
    for role in ('kernel', 'ramdisk'):
        assert [found['imageId'] for found in cloud.images_named(
            'identity-centos-' + role)] == [concurrent[role]]
    assert sorted(cloud.list_keys('concurrent-bundles')) == [
        'identity-centos-kernel.manifest.xml',
        'identity-centos-ramdisk.manifest.xml']
    assert concurrent['kernel'] not in [
        call['ImageId'] for call in proxy.form_requests('DeregisterImage')]
    assert len(proxy.form_requests('DeregisterImage')) == 2
    assert bucket_gone(cloud, 'identity-bundles')


# ======================================================================
# Signals and interrupts

def test_ctrl_c_during_a_slow_registration_waits_and_undoes_it(
        user_env, eucarc, non_admin, proxy, cloud, store):
    held = proxy.hold(registering('slow-fedora'))
    run = RunningCommand(INSTALL, [
        '-i', store.catalog['fedora']['name'], '-b', 'slow-bundles', '-p',
        'slow-fedora'], dict(user_env, **eucarc))
    assert held.arrived.wait(120), run.stderr
    run.signal(signal.SIGINT)
    run.wait_for('finishing the registration in flight first')
    held.release()  # the cloud registers it after all
    assert run.finish() == 128 + signal.SIGINT
    assert run.stderr.splitlines()[-1] == INTERRUPTED_AND_UNDONE
    assert 'Traceback' not in run.stderr
    # Awaited, then undone by the id RegisterImage gave.
    (deregistered,) = proxy.form_requests('DeregisterImage')
    assert deregistered['ImageId'].startswith('ami-')
    assert cloud.images_named('slow-fedora') == []
    assert bucket_gone(cloud, 'slow-bundles')
    assert journals(user_env) == []


def _interrupted_rollback(user_env, eucarc, proxy, store, prefix):
    """An install interrupted during its registration (which is awaited),
    whose rollback is then held at its first DeregisterImage."""
    registration = proxy.hold(registering(prefix))
    undo = proxy.hold(lambda method, path, body:
                      b'Action=DeregisterImage' in body)
    run = RunningCommand(INSTALL, [
        '-i', store.catalog['fedora']['name'], '-b', prefix + '-bundles',
        '-p', prefix], dict(user_env, **eucarc))
    assert registration.arrived.wait(120), run.stderr
    run.signal(signal.SIGINT)
    run.wait_for('finishing the registration in flight first')
    registration.release()
    assert undo.arrived.wait(120), run.stderr
    run.signal(signal.SIGINT)
    run.wait_for('removing what this run created first; 1 more '
                 'interruption stops it')
    return run, undo


def test_a_second_ctrl_c_does_not_cut_the_rollback_short(
        user_env, eucarc, non_admin, proxy, cloud, store):
    run, undo = _interrupted_rollback(user_env, eucarc, proxy, store,
                                      'second-fedora')
    undo.release()
    assert run.finish() == 128 + signal.SIGINT
    assert run.stderr.splitlines()[-1] == INTERRUPTED_AND_UNDONE
    assert 'Traceback' not in run.stderr
    assert cloud.images_named('second-fedora') == []
    assert bucket_gone(cloud, 'second-fedora-bundles')
    assert journals(user_env) == []


def test_a_third_ctrl_c_stops_the_rollback_and_says_what_is_left(
        install, user_env, eucarc, non_admin, proxy, cloud, store):
    run, undo = _interrupted_rollback(user_env, eucarc, proxy, store,
                                      'third-fedora')
    run.signal(signal.SIGINT)
    assert run.finish() == 128 + signal.SIGINT
    undo.release(forward=False)  # it never reached the cloud
    assert 'Traceback' not in run.stderr
    last = run.stderr.splitlines()[-1]
    prefix = ('eustore-install-image: error: interrupted while removing '
              'what this run created: left ')
    assert last.startswith(prefix), run.stderr
    listed, _, rest = last[len(prefix):].partition(' (written down in ')
    journal_path = rest.split(';')[0]
    assert os.path.isfile(journal_path)
    # Exactly what is still in the cloud.
    (image,) = cloud.images_named('third-fedora')
    keys = cloud.list_keys('third-fedora-bundles')
    expected = ['image {0} (third-fedora)'.format(image['imageId'])] + [
        'object third-fedora-bundles/' + key for key in keys] + [
        'bucket third-fedora-bundles']
    assert sorted(listed.split('; ')) == sorted(expected)
    # ... and the next install into this cloud removes it, and says so.
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'after-third-bundles', '--pad-name')
    assert list(installed_ids(result)) == ['image']
    assert any('an install interrupted at' in line and
               line.endswith('; removed') for line in result.messages)
    assert cloud.images_named('third-fedora') == []
    assert bucket_gone(cloud, 'third-fedora-bundles')
    assert not os.path.exists(journal_path)


@pytest.mark.parametrize('command', [DESCRIBE, CHECK, INSTALL])
def test_ctrl_c_during_a_catalog_fetch(user_env, eucarc, hostile, command):
    hostile.drip('/catalog', json.dumps({'images': []}).encode(), 0.2)
    args = ['-U', hostile.url, '--stall-timeout', '120']
    if command == INSTALL:
        args += ['-i', 'any', '-b', 'ctrl-c-bundles']
    run = RunningCommand(command, args, dict(user_env, **eucarc))
    wait_until(lambda: hostile.sent.get('/catalog'), 'the catalog fetch')
    run.signal(signal.SIGINT)
    assert run.finish() == 128 + signal.SIGINT
    assert run.stderr == '{0}: error: interrupted\n'.format(command)
    assert run.stdout == ''


@needs_gpg
def test_ctrl_c_during_the_publishers_lock_wait(operator, cloud_s3,
                                                operator_s3, store_bucket):
    cloud_s3.create_bucket(store_bucket)
    lock = json.dumps({'owner': 'another publisher', 'token': 'theirs',
                       'since': '2026-01-01T00:00:00Z'}).encode()
    cloud_s3.put_object(store_bucket, 'catalog.lock', lock, acl='private')
    run = operator.start(PUBLISH, *operator.publish_args('fedora'))
    lock_path = '/{0}/catalog.lock'.format(store_bucket)
    wait_until(lambda: len([path for method, path, _ in operator_s3.requests
                            if method == 'PUT' and path == lock_path]) >= 2,
               'waiting for the lock')
    run.signal(signal.SIGINT)
    assert run.finish() == 128 + signal.SIGINT
    assert run.stderr == 'eustore-publish-image: error: interrupted\n'
    # Their lock is theirs still; nothing was published, nothing left.
    assert cloud_s3.get_object(store_bucket, 'catalog.lock') == lock
    assert cloud_s3.list_keys(store_bucket) == ['catalog.lock']


# ======================================================================
# Bounds: size, time, depth

@pytest.mark.parametrize('keep', [False, True], ids=['streamed', 'kept'])
def test_a_body_without_length_is_held_to_the_catalogs_size(
        install, hostile, non_admin, proxy, cloud, demo_store_dir, tmpdir,
        keep):
    data = demo_bytes(demo_store_dir, FEDORA)
    size = 16 * 1024
    write_catalog(hostile.root, [entry(
        'endless', 'images/endless.tgz', size=size,
        sha256=hashlib.sha256(data[:size]).hexdigest())])
    hostile.chunked('/images/endless.tgz', data, endless=True)
    args = ['-i', 'endless', '-b', 'endless-bundles', '-p', 'endless',
            '-U', hostile.url]
    directory = tmpdir.mkdir('keep')
    if keep:
        args += ['-d', str(directory)]
    result = install(*args)
    one_line(result, 'sent more than the 16384 bytes the catalog gives')
    # It stopped reading: far less went than the server would have sent.
    assert hostile.sent['/images/endless.tgz'] < 64 * 1024 * 1024
    # Nothing kept, registered or left in the cloud.
    assert tree(str(directory)) == ({os.path.join(
        'eustore-install', '.eustore-install'): tree(str(directory)).get(
            os.path.join('eustore-install', '.eustore-install'))}
        if keep else {})
    assert not proxy.form_requests('RegisterImage')
    assert bucket_gone(cloud, 'endless-bundles')


def _cache_files(home):
    directory = os.path.join(home, '.cache', 'eustore')
    if not os.path.isdir(directory):
        return {}
    return tree(directory)


_BOMB = []


def test_a_gzip_bomb_catalog_is_refused(cli, hostile, user_env):
    if not _BOMB:
        _BOMB.append(gzip_bomb(64 * 1024 * 1024))
    assert len(_BOMB[0]) < 1024 * 1024  # on the wire
    hostile.gzip_encoded('/catalog', _BOMB[0])
    result = cli(DESCRIBE, '-U', hostile.url)
    one_line(result, 'is larger than the 33554432 bytes a catalog may have '
                     '(after decoding)')
    assert result.stdout == ''
    assert _cache_files(user_env['HOME']) == {}


def test_a_dripping_store_fails_at_the_stall_timeout(
        user_env, eucarc, hostile, non_admin, proxy, cloud, demo_store_dir,
        tmpdir):
    data = copy_demo(demo_store_dir, hostile.root, FEDORA)
    write_catalog(hostile.root, [entry('fedora', FEDORA, data=data)])
    # A byte every 0.3 seconds: never a pause as long as the socket's
    # timeout, never any progress either.
    hostile.drip('/' + FEDORA, data, 0.3)
    run = RunningCommand(INSTALL, [
        '-i', 'fedora', '-b', 'drip-bundles', '-p', 'drip', '-U',
        hostile.url, '--stall-timeout', '1'], dict(user_env, **eucarc))
    assert run.finish(timeout=120) == 1
    assert 'was cut off 6 times (last: no data for 1 seconds)' in \
        run.stderr.splitlines()[-1]
    assert not proxy.form_requests('RegisterImage')
    assert bucket_gone(cloud, 'drip-bundles')
    # The catalog the same way, and check-store (for a user with no copy
    # of it to fall back on).
    hostile.drip('/catalog', b'{"images": []}', 0.3)
    for command in (DESCRIBE, CHECK):
        run = RunningCommand(command, ['-U', hostile.url, '--stall-timeout',
                                       '1'], dict(user_env, HOME=str(
                                           tmpdir.mkdir(command))))
        assert run.finish(timeout=120) == 1
        assert run.stderr == (
            '{0}: error: the store at {1}catalog sent nothing for 1 seconds'
            '\n'.format(command, hostile.url))


def test_a_stalled_catalog_falls_back_to_the_cached_copy(cli, hostile):
    write_catalog(hostile.root, [entry('cached', 'images/cached.tgz')])
    first = cli(DESCRIBE, '-U', hostile.url)
    assert first.returncode == 0, first
    hostile.drip('/catalog', b'{"images": []}', 0.3)
    again = cli(DESCRIBE, '-U', hostile.url, '--stall-timeout', '1')
    assert again.returncode == 0, again
    assert again.lines == first.lines
    assert any('sent nothing for 1 seconds; using its catalog as fetched '
               'at ' in line for line in again.messages)


@pytest.mark.parametrize('answer, complaint', [
    ('unsolicited-304', 'answered "304 Not Modified" for {url}catalog to a '
                        'request that had no copy to compare'),
    ('deep-json', 'the catalog at {url}catalog nests deeper than 64 '
                  'levels'),
], ids=['unsolicited-304', 'deep-json'])
def test_odd_answers_give_one_clear_line(cli, hostile, answer, complaint):
    if answer == 'unsolicited-304':
        hostile.not_modified('/catalog')
    else:
        hostile.document('/catalog', deep_json(100000))
    result = cli(DESCRIBE, '-U', hostile.url)
    one_line(result, complaint.format(url=hostile.url))
    assert result.stdout == ''


def test_odd_fields_cost_their_entry_a_field_not_the_listing(cli, hostile):
    def image(name, size):
        return (u'{{"name": "{0}", "os": "linux", "architecture": "x86_64",'
                u' "url": "images/x.tgz", "size": {1}}}'.format(name, size))
    document = u'{{"images": [{0}]}}'.format(u', '.join([
        image('first', 10), image('huge', '1e999'),
        image('bad\\ud800name', 10), image('digits', '9' * 40),
        image('nan', 'NaN'), image('deep', '[[[[1]]]]'),
        image('last', 10)]))
    hostile.document('/catalog', document.encode('ascii'))
    result = cli(DESCRIBE, '-U', hostile.url)
    assert result.returncode == 0, result
    assert [line.split('\t')[0] for line in result.lines] == [
        'first', 'huge', 'bad\\ud800name', 'digits', 'nan', 'deep', 'last']
    listed = json.loads(cli(DESCRIBE, '-U', hostile.url, '--json').stdout)
    assert [item['size'] for item in listed] == [10, None, 10, None, None,
                                                 None, 10]
    assert listed[2]['name'] == u'bad\ud800name'


# ======================================================================
# Freshness: replayed and expired signed catalogs

@needs_gpg
def test_an_older_signed_catalog_is_refused_and_the_cache_kept(
        cli, install, hostile, signing_key, user_env, eucarc, non_admin,
        proxy, demo_store_dir):
    data = copy_demo(demo_store_dir, hostile.root, FEDORA)
    trust = ['--trusted-key', signing_key.public_file]
    write_signed_catalog(hostile.root, signing_key, [
        entry('current', FEDORA, data=data)], serial=2)
    first = cli(DESCRIBE, '-U', hostile.url, *trust)
    assert first.returncode == 0, first
    cached = _cache_files(user_env['HOME'])
    assert len(cached) == 1
    # Served again: an older catalog, signed as validly, still listing an
    # image since withdrawn.
    write_signed_catalog(hostile.root, signing_key, [
        entry('current', FEDORA, data=data),
        entry('withdrawn', FEDORA, data=data)], serial=1,
        generated='2025-01-01T00:00:00Z')
    again = cli(DESCRIBE, '-U', hostile.url, *trust)
    line = one_line(again, 'refusing the catalog at {0}catalog: it is older '
                           '(serial 1) than the one you had from it on '
                           .format(hostile.url))
    assert '(serial 2)' in line
    assert again.stdout == ''
    result = install('-i', 'withdrawn', '-b', 'replay-bundles', '-U',
                     hostile.url, *trust)
    one_line(result, 'it is older (serial 1)')
    assert puts(proxy) == []
    assert _cache_files(user_env['HOME']) == cached


@needs_gpg
def test_an_expired_signed_catalog_is_refused_and_the_cache_kept(
        operator, cli, cloud_s3, store_bucket, store_url, signing_key,
        user_env, tmpdir):
    assert operator.publish('fedora', '--valid-for', '1').returncode == 0
    published = json.loads(cloud_s3.get_object(store_bucket,
                                               'catalog').decode('utf-8'))
    assert published['serial'] == 1
    assert parse_utc(published['valid-until']) - \
        parse_utc(published['generated']) == 86400
    trust = ['--trusted-key', signing_key.public_file]
    first = cli(DESCRIBE, '-U', store_url, *trust)
    assert first.returncode == 0, first
    cached = _cache_files(user_env['HOME'])
    # The same catalog, its validity run out (edited and signed again with
    # the store's key, as if served after its time).
    published.update(serial=2, **{'valid-until': '2001-01-01T00:00:00Z'})
    body = json.dumps(published).encode('utf-8')
    cloud_s3.put_object(store_bucket, 'catalog', body, acl='public-read')
    cloud_s3.put_object(store_bucket, 'catalog.asc', signing_key.sign(body),
                        acl='public-read')
    again = cli(DESCRIBE, '-U', store_url, *trust)
    one_line(again, 'refusing the catalog at {0}catalog: it expired on '
                    '2001-01-01 00:00:00 UTC'.format(store_url))
    assert _cache_files(user_env['HOME']) == cached
    # A user who never saw the store refuses it too, and keeps nothing.
    fresh = str(tmpdir.mkdir('fresh-home'))
    new_user = cli(DESCRIBE, '-U', store_url, *trust, env={'HOME': fresh})
    one_line(new_user, 'it expired on 2001-01-01 00:00:00 UTC')
    assert _cache_files(fresh) == {}


# ======================================================================
# Terminal injection

HOSTILE_NAMES = {
    'title': u'title' + TITLE,
    'overwrite': u'fake' + RETURN + u'centos-x86_64-demo\tcentos',
    'lines': u'two\nlines',
    'c1': u'csi\x9b2J',
}
SHOWN_NAMES = {
    'title': u'title\\x1b]0;pwned\\x07',
    'overwrite': u'fake\\rcentos-x86_64-demo\\tcentos',
    'lines': u'two\\nlines',
    'c1': u'csi\\x9b2J',
}


def test_escape_sequences_never_reach_the_terminal(
        cli, install, hostile, non_admin, proxy):
    images = [entry(HOSTILE_NAMES[key], 'images/{0}.tgz'.format(key),
                    size=10, description=CLEAR + u'cleared\t' + TITLE)
              for key in sorted(HOSTILE_NAMES)]
    images.append(dict(images[0]))  # a duplicate, to be warned about
    write_catalog(hostile.root, images)
    for key in HOSTILE_NAMES:
        hostile.document('/images/{0}.tgz'.format(key), b'', status=403,
                         reason=CLEAR + 'denied' + TITLE)
    hostile.document('/other/catalog', b'', status=400,
                     reason=TITLE + 'bad' + CLEAR)

    listing = cli(DESCRIBE, '-U', hostile.url)
    verbose = cli(DESCRIBE, '-U', hostile.url, '-v')
    check = cli(CHECK, '-U', hostile.url)
    unknown = install('-i', 'title', '-b', 'tty-bundles', '-U', hostile.url)
    denied = install('-i', HOSTILE_NAMES['title'], '-b', 'tty-bundles',
                     '-U', hostile.url)
    reason = cli(DESCRIBE, '-U', hostile.url + 'other/')
    for result in (listing, verbose, check, unknown, denied, reason):
        no_raw_controls(result.stdout, result.stderr)
    # One line per entry, every line of six cells (ten with -v): a tab or
    # a newline in a field cannot make another.
    assert listing.returncode == 0, listing
    assert [line.split('\t')[0] for line in listing.lines] == [
        SHOWN_NAMES[key] for key in sorted(HOSTILE_NAMES)] + [
        SHOWN_NAMES['c1']]
    assert all(len(line.split('\t')) == 6 for line in listing.lines)
    assert all(len(line.split('\t')) == 10 for line in verbose.lines)
    assert listing.lines[0].split('\t')[5] == \
        u'\\x1b[2Jcleared\\t\\x1b]0;pwned\\x07'
    assert any('more than once' in line for line in listing.messages)
    assert [line.split('\t')[:2] for line in check.lines] == [
        ['FAILED', SHOWN_NAMES[key]] for key in sorted(HOSTILE_NAMES)] + [
        ['FAILED', SHOWN_NAMES['c1']]]
    assert 'answered 403 \\x1b[2Jdenied\\x1b]0;pwned\\x07' in check.lines[0]
    one_line(unknown, u'closest names: ' + SHOWN_NAMES['title'])
    one_line(denied, 'answered 403 \\x1b[2Jdenied\\x1b]0;pwned\\x07 for')
    one_line(reason, 'answered 400 \\x1b]0;pwned\\x07bad\\x1b[2J for')
    assert puts(proxy) == []
    # --json is plain ASCII JSON, the names exactly as the catalog has them.
    as_json = cli(DESCRIBE, '-U', hostile.url, '--json')
    assert as_json.returncode == 0
    as_json.stdout.encode('ascii')
    assert [item['name'] for item in json.loads(as_json.stdout)] == [
        HOSTILE_NAMES[key] for key in sorted(HOSTILE_NAMES)] + [
        HOSTILE_NAMES['c1']]


# ======================================================================
# The operator's side

def gpgv_verifies(key, document, signature, tmpdir):
    """Whether gpgv itself finds ``signature`` a good one of ``document``
    by ``key``."""
    where = tmpdir.mkdir('gpgv-' + uuid.uuid4().hex[:8])
    keyring = key.export_binary(str(where.join('keyring.gpg')))
    where.join('catalog').write_binary(document)
    where.join('catalog.asc').write_binary(signature)
    return subprocess.call(
        ['gpgv', '--keyring', keyring, str(where.join('catalog.asc')),
         str(where.join('catalog'))], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) == 0


def store_state(cloud_s3, bucket):
    catalog = cloud_s3.get_object(bucket, 'catalog')
    return (catalog, cloud_s3.get_object(bucket, 'catalog.asc'),
            json.loads(catalog.decode('utf-8'))['images'],
            set(cloud_s3.list_keys(bucket)))


@needs_gpg
def test_withdraw_deletes_nothing_another_entry_or_the_store_needs(
        operator, cloud_s3, store_bucket, signing_key, tmpdir):
    assert operator.publish('centos').returncode == 0
    assert operator.publish('fedora').returncode == 0
    catalog = json.loads(cloud_s3.get_object(store_bucket,
                                             'catalog').decode('utf-8'))
    fedora_url = [image['url'] for image in catalog['images']
                  if image['name'] == 'fedora-demo'][0]
    # Entries a hand edit (or a hostile co-operator) added: urls naming
    # fedora's tarball another way, the catalog, its signature.
    aliases = {'dot-slash': './' + fedora_url,
               'doubled-slashes': fedora_url.replace('/', '//'),
               'escaped': fedora_url.replace('images/', 'images/%2E/'),
               'catalog': 'catalog', 'signature': 'catalog.asc',
               'climbing': 'images/../catalog'}
    for name, url in sorted(aliases.items()):
        catalog['images'].append({'name': name, 'url': url, 'os': 'linux',
                                  'architecture': 'x86_64'})
    body = json.dumps(catalog).encode('utf-8')
    cloud_s3.put_object(store_bucket, 'catalog', body, acl='public-read')
    cloud_s3.put_object(store_bucket, 'catalog.asc', signing_key.sign(body),
                        acl='public-read')
    keys_before = set(cloud_s3.list_keys(store_bucket))
    for name in sorted(aliases):
        result = operator(WITHDRAW, '-i', name, '--sign-key',
                          signing_key.fingerprint)
        assert result.returncode == 0, result
    document, signature, images, keys = store_state(cloud_s3, store_bucket)
    assert keys == keys_before
    assert sorted(image['name'] for image in images) == ['centos-demo',
                                                         'fedora-demo']
    assert gpgv_verifies(signing_key, document, signature, tmpdir)
    # Withdrawing fedora itself does delete its tarball, now unnamed.
    assert operator(WITHDRAW, '-i', 'fedora-demo', '--sign-key',
                    signing_key.fingerprint).returncode == 0
    assert set(cloud_s3.list_keys(store_bucket)) == keys_before - {
        fedora_url}


@needs_gpg
@pytest.mark.parametrize('held_at', ['catalog', 'catalog.asc'])
def test_a_publisher_that_lost_its_lock_fails_and_the_store_stays_whole(
        operator, operator_s3, cloud_s3, store_bucket, signing_key, tmpdir,
        held_at):
    assert operator.publish('debian').returncode == 0
    path = '/{0}/{1}'.format(store_bucket, held_at)
    held = operator_s3.hold(lambda method, asked, body: method == 'PUT' and
                            asked.split('?')[0] == path)
    first = operator.start(PUBLISH, *operator.publish_args('fedora'))
    assert held.arrived.wait(120), first.stderr
    # Meanwhile another operator, told the first is gone, breaks its lock
    # and publishes; then a third takes the lock and is still at work.
    second = operator.publish('centos', '--break-lock')
    assert second.returncode == 0, second
    third = json.dumps({'owner': 'a third publisher', 'token': 'third',
                        'since': '2026-01-01T00:00:00Z'}).encode('utf-8')
    cloud_s3.put_object(store_bucket, 'catalog.lock', third, acl='private')
    held.release()
    assert first.finish() == 1
    assert 'Traceback' not in first.stderr
    last = first.stderr.splitlines()[-1]
    assert "this publisher's lock on {0}/ was taken".format(store_bucket) \
        in last, first.stderr
    # A catalog and a signature that match; the third's lock left alone;
    # every tarball the catalog names there, and no other.
    document, signature, images, keys = store_state(cloud_s3, store_bucket)
    assert gpgv_verifies(signing_key, document, signature, tmpdir)
    assert cloud_s3.get_object(store_bucket, 'catalog.lock') == third
    names = set(image['name'] for image in images)
    assert {'debian-demo', 'centos-demo'} <= names
    assert set(key for key in keys if key.startswith('images/')) == set(
        image['url'] for image in images)


# ======================================================================
# euca2ools backend: no name from a tarball is an option
# (docs/threat-model.md, "euca2ools backend")

def _option_tarball(tmpdir, victim):
    disk = b'\x00disk image\x00' * 4096
    path = str(tmpdir.join('options.tgz'))
    write_tarball(path, [
        file_member('options/options.img', disk),
        file_member('--index-file=' + str(victim), b'no option'),
        file_member('--to-command=touch ' + str(victim) + '.made', b'')])
    return path, disk


@pytest.mark.parametrize('name', ['--index-file=/tmp/x', '-T', '-',
                                  '--to-command=sh'])
def test_the_layout_rules_refuse_members_named_like_options(name):
    members = [('img/disk.img', 100), (name, 10)]
    for check in (analyze, catalog_fields):
        with pytest.raises(LayoutError) as refused:
            check(members)
        assert 'would take for an option' in str(refused.value)
    # Whatever kind of member it is.
    link = link_member(name, 'img/disk.img')[0]
    with pytest.raises(LayoutError):
        analyze([link] + members[:1])


@needs_gpg
def test_publish_refuses_members_named_like_options(operator, cloud_s3,
                                                    store_bucket, tmpdir,
                                                    signing_key):
    victim = tmpdir.join('victim')
    victim.write_binary(b'precious')
    path, _ = _option_tarball(tmpdir, victim)
    result = operator(PUBLISH, '-t', path, '-s', 'options', '-a', 'x86_64',
                      '--os', 'linux', '--sign-key', signing_key.fingerprint)
    one_line(result, 'would take for an option')
    assert victim.read_binary() == b'precious'
    assert not os.path.exists(str(victim) + '.made')
    assert not cloud_s3.bucket_exists(store_bucket)


def test_install_refuses_members_named_like_options(install, non_admin,
                                                    proxy, cloud, tmpdir):
    victim = tmpdir.join('victim')
    victim.write_binary(b'precious')
    path, _ = _option_tarball(tmpdir, victim)
    result = install('-t', path, '-s', 'options', '-a', 'x86_64', '-b',
                     'options-bundles', '-p', 'options')
    one_line(result, 'would take for an option')
    assert victim.read_binary() == b'precious'
    assert not os.path.exists(str(victim) + '.made')
    assert puts(proxy) == []
    assert not proxy.form_requests('RegisterImage')


def test_the_euca2ools_feeder_reads_members_by_position(tmpdir):
    # What feeds euca2ools each member (install/euca2oolstarget.py), run
    # as it is run there: it is given positions, never names, so a member
    # named like an option is only a name.
    victim = tmpdir.join('victim')
    victim.write_binary(b'precious')
    path, disk = _option_tarball(tmpdir, victim)
    for index, expected in enumerate([disk, b'no option', b'']):
        proc = subprocess.Popen([sys.executable, '-c', _FEEDER, path,
                                 str(index)], stdout=subprocess.PIPE)
        assert proc.communicate()[0] == expected
        assert proc.returncode == 0
    assert victim.read_binary() == b'precious'
    assert not os.path.exists(str(victim) + '.made')


# ======================================================================
# What held up, and must keep holding

def test_links_devices_and_climbing_names_touch_nothing(
        install, non_admin, proxy, cloud, keys, tmpdir):
    work = tmpdir.mkdir('work')
    token = uuid.uuid4().hex[:12]
    climbing = '../../climbed-' + token
    absolute = '/tmp/eustore-absolute-' + token
    disk = b'\x01the one disk image\x01' * 4096
    path = str(tmpdir.join('tricky.tgz'))
    write_tarball(path, [
        file_member(climbing, b'climbed out'),
        file_member(absolute, b'absolute'),
        link_member('tricky/link.img', '/etc/passwd'),
        link_member('tricky/hard.img', 'tricky/tricky.img', hard=True),
        device_member('tricky/device.img'),
        file_member('tricky/tricky.img', disk),
        link_member('tricky/later.img', '/etc/shadow')])
    result = install('-t', path, '-s', 'tricky', '-a', 'x86_64', '-b',
                     'tricky-bundles', '-p', 'tricky', '-d', str(work),
                     cwd=str(work))
    assert list(installed_ids(result)) == ['image']
    # The one regular disk image is what went into the cloud ...
    decoded = fetch_and_decode(cloud, 'tricky-bundles',
                               'tricky.manifest.xml', keys[1],
                               str(tmpdir.join('decoded')))
    assert decoded == disk
    # ... and no member was written anywhere.
    assert not os.path.lexists(os.path.join(str(work), climbing))
    assert not os.path.lexists(absolute)
    assert sorted(tree(str(work))) == [
        os.path.join('eustore-install', '.eustore-install')]


def test_redirect_loops_and_endless_server_errors_end_in_one_line(
        cli, install, hostile, non_admin, proxy, cloud, demo_store_dir,
        tmpdir):
    # One retry of a 5xx, not requestbuilder's default two with back-off:
    # that it ends is the point, not how long it tries.
    config = tmpdir.join('retries.ini')
    config.write('[global]\nmax-retries = 1\n')
    retries = {'EUCA_CONFIG_PATH': str(config)}
    hostile.redirect('/loop/catalog', '/loop/catalog')
    looping = cli(DESCRIBE, '-U', hostile.url + 'loop/', env=retries)
    # requestbuilder follows five redirects, then reports the sixth.
    one_line(looping, 'answered 302 Found for {0}loop/catalog'.format(
        hostile.url))
    assert hostile.paths_requested().count('/loop/catalog') == 6
    hostile.faults['/failing/catalog'] = 503
    failing = cli(DESCRIBE, '-U', hostile.url + 'failing/', env=retries)
    one_line(failing, 'answered 503')
    assert hostile.paths_requested().count('/failing/catalog') == 2
    # A tarball that always fails: one line, and nothing left behind.
    data = copy_demo(demo_store_dir, hostile.root, FEDORA)
    write_catalog(hostile.root, [entry('fedora', FEDORA, data=data)])
    hostile.faults['/' + FEDORA] = 500
    result = install('-i', 'fedora', '-b', 'failing-bundles', '-p',
                     'failing', '-U', hostile.url, env=retries)
    one_line(result, 'answered 500')
    assert hostile.paths_requested().count('/' + FEDORA) == 2
    assert not proxy.form_requests('RegisterImage')
    assert puts(proxy) == []


@pytest.mark.parametrize('damage', ['truncated', 'not-gzip'])
def test_a_damaged_tarball_the_catalog_vouches_for_leaves_nothing(
        install, hostile, non_admin, proxy, cloud, demo_store_dir, damage):
    data = demo_bytes(demo_store_dir, FEDORA)
    data = data[:len(data) // 2] if damage == 'truncated' else \
        b'PK\x03\x04 a zip file, not a tar.gz' * 512
    # Its checksums are of these very bytes: only reading it can tell.
    target = os.path.join(hostile.root, 'images', 'damaged.tgz')
    os.makedirs(os.path.dirname(target))
    with open(target, 'wb') as out:
        out.write(data)
    write_catalog(hostile.root, [entry('damaged', 'images/damaged.tgz',
                                       data=data)])
    result = install('-i', 'damaged', '-b', 'damaged-bundles', '-p',
                     'damaged', '-U', hostile.url)
    one_line(result, 'is not a readable tar.gz')
    assert not proxy.form_requests('RegisterImage')
    assert bucket_gone(cloud, 'damaged-bundles')


# ======================================================================
# Round two (issue 19): decompression, parsing, replay of every kind of
# store, the size of every download, the pace of every transfer.  Memory
# is the command's peak RSS as GNU time gives it; "linear" compares two
# sizes of the same crafted input in the same test, never seconds against
# a constant.

MIB = 1024 * 1024
# What install and describe may take against any crafted input.
MEMORY_CEILING = 150 * 1000 * 1000

needs_xz = pytest.mark.skipif(not which('xz'), reason='xz makes the test '
                              'disks: run scripts/setup')
needs_gnu_time = pytest.mark.skipif(
    not os.path.exists(GNU_TIME), reason='GNU time measures the commands '
    '(Debian: apt-get install time)')
builtin_only = pytest.mark.skipif(uses_euca2ools(), reason=(
    'what is measured is the built-in bundler\'s install'))


@pytest.fixture
def measure(user_env, tmpdir):
    """Run a command under GNU time: a Measured result."""
    def run(command, *args, **kwargs):
        env = dict(user_env, **kwargs.pop('env', {}))
        report = str(tmpdir.join('time-{0}'.format(uuid.uuid4().hex[:8])))
        return run_measured(command, args, env, report)
    return run


def linear(small, large, ratio):
    """The larger run cost at most twice what linear growth allows from the
    smaller (its start-up included, which only makes it cheaper)."""
    assert large.cpu <= 2 * ratio * small.cpu, (small, large)


def write_builder(root, sections, key=None):
    """A virt-builder index of ``sections`` in ``root`` (clearsigned as
    index.asc with ``key``); its URL's name."""
    text = virt_builder_index(sections)
    with open(os.path.join(root, 'index'), 'wb') as out:
        out.write(text)
    if key is None:
        return 'index'
    with open(os.path.join(root, 'index.asc'), 'wb') as out:
        out.write(key.clearsign(text))
    return 'index.asc'


def manifest_size(cloud, bucket, prefix):
    """The image size the uploaded manifest gives."""
    manifest = cloud.get_object(bucket, prefix + '.manifest.xml')
    return int(re.search(br'<image>.*?<size>(\d+)</size>', manifest,
                         re.S).group(1))


@needs_xz
@needs_gnu_time
@builtin_only
def test_an_xz_bomb_installs_in_flat_memory_and_linear_time(
        measure, eucarc, hostile, non_admin, proxy, cloud, tmpdir):
    # A disk of zeros, as honest images with empty space are, and as a
    # bomb is: a few KiB of xz inflating a thousandfold and more.
    runs = {}
    for size in (64 * MIB, 256 * MIB):
        name = 'zeros-{0}'.format(size // MIB)
        data = xz_of_zeros(os.path.join(hostile.root, name + '.xz'), size)
        assert len(data) * 1000 < size
        write_builder(hostile.root, [template(name, data, size=size)])
        runs[size] = measure(INSTALL, '-i', name, '-b', name + '-bundles',
                             '-p', name, '-U', hostile.url, env=eucarc)
        assert list(installed_ids(runs[size])) == ['image'], runs[size]
        assert runs[size].maxrss < MEMORY_CEILING, runs[size]
        assert manifest_size(cloud, name + '-bundles', name) == size
    linear(runs[64 * MIB], runs[256 * MIB], 4)


@needs_xz
@needs_gnu_time
@builtin_only
@pytest.mark.parametrize('keep', [False, True], ids=['streamed', 'kept'])
def test_an_xz_disk_that_inflates_past_its_size_is_refused_as_it_inflates(
        measure, eucarc, hostile, non_admin, proxy, cloud, tmpdir, keep):
    # The store says 1 MiB; the file (checksum and all) inflates to 1 GiB.
    data = xz_of_zeros(os.path.join(hostile.root, 'liar.xz'), 1024 * MIB)
    write_builder(hostile.root, [template('liar', data, size=MIB)])
    args = ['-i', 'liar', '-b', 'liar-bundles', '-p', 'liar', '-U',
            hostile.url]
    if keep:
        args += ['-d', str(tmpdir.mkdir('keep'))]
    result = measure(INSTALL, *args, env=eucarc)
    one_line(result, 'the xz data inflates to more than the 1048576 bytes a '
                     'disk image the store describes may have')
    assert result.maxrss < MEMORY_CEILING, result
    assert not proxy.form_requests('RegisterImage')
    assert bucket_gone(cloud, 'liar-bundles')


@needs_gnu_time
def test_a_simplestreams_inheritance_bomb_lists_in_linear_memory(
        measure, hostile):
    # Every item inherits every attribute of the document's top: copied
    # down, 4000 of each made 16 million.
    runs = {}
    for count in (4000, 8000):
        path = 'streams/v1/bomb-{0}.json'.format(count)
        hostile.document('/' + path, products_bomb(count))
        runs[count] = measure(DESCRIBE, '-U', hostile.url + path,
                              '--all-versions')
        assert runs[count].returncode == 0, runs[count]
        assert runs[count].lines == ['com.example:bomb:amd64:20240315\t\t'
                                     'x86_64\t\t\tcom.example:bomb:amd64']
        assert runs[count].maxrss < MEMORY_CEILING, runs[count]
    linear(runs[4000], runs[8000], 2)


@needs_gnu_time
@builtin_only
def test_a_tar_header_of_hundreds_of_mib_is_refused_in_flat_memory(
        measure, eucarc, hostile, non_admin, proxy, cloud):
    # tarfile reads a pax header whole: 256 MiB of it in 260 KiB of gzip.
    target = os.path.join(hostile.root, 'images', 'pax.tgz')
    os.makedirs(os.path.dirname(target))
    data = pax_bomb(target, 256 * MIB, b'\x01disk\x01' * 4096)
    assert len(data) < MIB
    write_catalog(hostile.root, [entry('pax', 'images/pax.tgz', data=data)])
    result = measure(INSTALL, '-i', 'pax', '-b', 'pax-bundles', '-p', 'pax',
                     '-U', hostile.url, env=eucarc)
    one_line(result, 'is not a readable tar.gz (a header extension of '
                     '268435456 bytes, more than the 1048576 bytes a '
                     'member\'s headers may have)')
    assert result.maxrss < MEMORY_CEILING, result
    assert not proxy.form_requests('RegisterImage')


# ---------------------------------------------------------- replayed indexes

def write_mirror(root, key, index_updated, products_updated):
    """A signed simplestreams mirror of one product (nothing to download:
    listing and refusing need none); the store's URL's name."""
    products = {
        'content_id': 'com.example:released', 'datatype': 'image-downloads',
        'format': 'products:1.0', 'updated': products_updated,
        'products': {'com.example:server:amd64': {
            'arch': 'amd64', 'os': 'ubuntu', 'versions': {'20240315': {
                'items': {'disk1.img': {
                    'ftype': 'disk1.img', 'path': 'server/disk1.img',
                    'size': 1024, 'sha256': 'ab' * 32}}}}}}}
    index = {'format': 'index:1.0', 'updated': index_updated,
             'index': {'com.example:released': {
                 'datatype': 'image-downloads', 'format': 'products:1.0',
                 'path': 'streams/v1/released.sjson',
                 'products': ['com.example:server:amd64']}}}
    streams = os.path.join(root, 'streams', 'v1')
    if not os.path.isdir(streams):
        os.makedirs(streams)
    for name, data in (('released.sjson', products), ('index.sjson', index)):
        with open(os.path.join(streams, name), 'wb') as out:
            out.write(key.clearsign(json.dumps(data).encode('utf-8')))
    return 'streams/v1/index.sjson'


NEWER = 'Fri, 15 Mar 2024 12:00:00 +0000'
OLDER = 'Mon, 01 Jan 2024 12:00:00 +0000'


@needs_gpg
@pytest.mark.parametrize('kind', ['virt-builder', 'simplestreams-index',
                                  'simplestreams-products'])
def test_an_older_signed_index_is_refused_and_the_cache_kept(
        cli, install, hostile, signing_key, user_env, non_admin, proxy,
        kind):
    trust = ['--trusted-key', signing_key.public_file]
    data = b'a disk'
    if kind == 'virt-builder':
        name = write_builder(hostile.root, [
            template('fedora', data, revision=2),
            template('debian', data, revision=7)], key=signing_key)
        image = 'fedora'
    else:
        name = write_mirror(hostile.root, signing_key, NEWER, NEWER)
        image = 'com.example:server:amd64'
    store_url = hostile.url + name
    first = cli(DESCRIBE, '-U', store_url, *trust)
    assert first.returncode == 0 and first.stderr == '', first
    cached = _cache_files(user_env['HOME'])
    # An older document, as validly signed, served again.
    if kind == 'virt-builder':
        write_builder(hostile.root, [
            template('fedora', data, revision=1),
            template('debian', data, revision=7)], key=signing_key)
        noun, older, newer = ('index', '[fedora] x86_64 at revision 1',
                              'revision 2')
    elif kind == 'simplestreams-index':
        write_mirror(hostile.root, signing_key, OLDER, NEWER)
        noun, older, newer = 'index', 'updated ' + OLDER, 'updated ' + NEWER
    else:
        write_mirror(hostile.root, signing_key, NEWER, OLDER)
        noun, older, newer = ('products file', 'updated ' + OLDER,
                              'updated ' + NEWER)
        name = 'streams/v1/released.sjson'
    again = cli(DESCRIBE, '-U', store_url, *trust)
    line = one_line(again, 'refusing the {0} at {1}{2}: it is older ({3}) '
                           'than the one you had from it on '.format(
                               noun, hostile.url, name, older))
    assert line.endswith('({0}), so it may be a replayed {1} hiding newer '
                         'or withdrawn images; try again later, and tell '
                         'the store\'s operator if it persists'
                         .format(newer, noun)), line
    assert again.stdout == ''
    result = install('-i', image, '-b', 'replay-bundles', '-U', store_url,
                     *trust)
    one_line(result, 'it is older ({0})'.format(older))
    assert puts(proxy) == []
    assert _cache_files(user_env['HOME']) == cached


# ------------------------------------------------------------ download sizes

@pytest.mark.parametrize('how', ['streamed', 'kept', 'check-store'])
def test_a_disk_without_a_compressed_size_is_held_to_its_disk(
        cli, install, hostile, non_admin, proxy, cloud, tmpdir, how):
    # No compressed_size; the file of the 1 MiB raw disk never ends.
    data = b'\x01a raw disk\x01' * 1000
    write_builder(hostile.root, [template('endless', data, size=MIB,
                                          compressed_size=None,
                                          file='endless.img')])
    hostile.chunked('/endless.img', data, endless=True)
    keep = tmpdir.mkdir('keep')
    if how == 'check-store':
        result = cli(CHECK, '-U', hostile.url)
        assert result.returncode == 1
        (line,) = result.lines
        assert line.startswith('FAILED\tendless\t'), line
    else:
        args = ['-i', 'endless', '-b', 'endless-bundles', '-U', hostile.url]
        result = install(*(args + (['-d', str(keep)] if how == 'kept'
                                   else [])))
        line = one_line(result, 'more than the ')
        assert not proxy.form_requests('RegisterImage')
        assert bucket_gone(cloud, 'endless-bundles')
    bound = MIB + MIB // 64 + 16 * MIB
    if how == 'streamed' and not uses_euca2ools():
        # Bundled as it comes, it is held to the disk's own size.  (With
        # euca2ools it is downloaded first, and held to the file's bound.)
        assert 'the image holds more than the 1048576 bytes declared' in line
    else:
        assert 'sent more than the {0} bytes a disk image file of a {1}-byte '\
            'disk may have for {2}endless.img'.format(bound, MIB,
                                                      hostile.url) in line
    # It stopped reading there, not at the server's end.
    assert hostile.sent['/endless.img'] < bound + 16 * MIB
    assert [name for name in tree(str(keep))
            if not name.endswith('.eustore-install')] == []


@pytest.mark.parametrize('how', ['announced', 'catalog'])
def test_a_size_over_the_most_a_tarball_may_have_is_refused_unread(
        cli, install, hostile, non_admin, proxy, tmpdir, how):
    data = b'a tarball'
    huge = 20 * 1024 * MIB
    image = entry('huge', 'images/huge.tgz', data=data)
    if how == 'announced':
        del image['size']  # only its sha256: the store's answer says more
        hostile.announce('/images/huge.tgz', huge, data * 1000)
        said = 'the image store announces'
    else:
        image['size'] = huge
        hostile.document('/images/huge.tgz', data)
        said = 'the catalog gives'
    write_catalog(hostile.root, [image])
    refusal = ('{0} {1} bytes for {2}images/huge.tgz, more than the '
               '11811160064 bytes a tarball may have'.format(
                   said, huge, hostile.url))
    keep = tmpdir.mkdir('keep')
    for extra in ([], ['-d', str(keep)]):
        result = install('-i', 'huge', '-b', 'huge-bundles', '-U',
                         hostile.url, '--stall-timeout', '5', *extra)
        one_line(result, refusal)
    check = cli(CHECK, '-U', hostile.url, '--stall-timeout', '5')
    assert check.returncode == 1
    assert check.lines[0].startswith('FAILED\thuge\t' + refusal)
    assert hostile.sent.get('/images/huge.tgz', 0) <= 3 * 9000
    assert [name for name in tree(str(keep))
            if not name.endswith('.eustore-install')] == []
    assert puts(proxy) == []


def test_a_body_nobody_gives_a_size_is_held_while_it_is_read(hostile,
                                                             monkeypatch):
    # The stream itself, with a small limit for the kind (the real ones are
    # 10 GiB and more): one chunk past it and it stops.
    for proxy in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'):
        monkeypatch.delenv(proxy, raising=False)
    hostile.chunked('/endless.tgz', b'\0' * 65536, endless=True)
    service = EustoreService(ConfigView(ConfigData([])), url=hostile.url,
                             max_retries=0, timeout=10)
    service.configure()
    stream = DownloadStream(service.open_url, hostile.url + 'endless.tgz',
                            limit=SizeLimit(MIB, 'tarball'))
    with pytest.raises(IntegrityError) as refused:
        for _ in stream.chunks():
            pass
    assert 'sent more than the 1048576 bytes a tarball may have for ' in \
        str(refused.value)
    assert stream.done <= MIB + 65536
    assert hostile.sent['/endless.tgz'] < 16 * MIB


# ----------------------------------------------------------- slow retrieval

@pytest.mark.parametrize('command', [INSTALL, DESCRIBE, CHECK])
def test_a_store_below_the_minimum_rate_fails_saying_the_rate(
        user_env, eucarc, hostile, non_admin, proxy, cloud, demo_store_dir,
        tmpdir, command):
    # A byte every 0.2 seconds, each as a chunk of its own: never a stall,
    # never a transfer either.  The default minimum rate, over 2 seconds.
    data = copy_demo(demo_store_dir, hostile.root, FEDORA)
    write_catalog(hostile.root, [entry('fedora', FEDORA, data=data)])
    dripping = '/catalog' if command != INSTALL else '/' + FEDORA
    with open(os.path.join(hostile.root, dripping[1:]), 'rb') as served:
        hostile.drip(dripping, served.read(), 0.2, chunked=True)
    args = ['-U', hostile.url, '--stall-timeout', '2']
    if command == INSTALL:
        args += ['-i', 'fedora', '-b', 'slow-bundles', '-p', 'slow']
    run = RunningCommand(command, args, dict(
        user_env, HOME=str(tmpdir.mkdir('home-' + command)), **eucarc))
    assert run.finish(timeout=60) == 1
    last = run.stderr.splitlines()[-1]
    match = re.search(r'the store sent (\d+) bytes of {0} in (\d+) seconds '
                      r'\(([\d.]+) bytes/s\), slower than the 1024 bytes/s '
                      r'a transfer must keep up'.format(
                          re.escape(hostile.url + dripping[1:])), last)
    assert match, run.stderr
    assert 0 < float(match.group(3)) < 20
    assert 'Traceback' not in run.stderr
    if command == INSTALL:
        assert not proxy.form_requests('RegisterImage')
        assert bucket_gone(cloud, 'slow-bundles')


def test_a_slow_but_steady_store_passes_and_the_minimum_is_configurable(
        cli, hostile, tmpdir):
    # 4 KiB every 0.1 seconds, about 40 KiB/s: a slow link, passed by the
    # default minimum; refused by one of 1 MB/s from the configuration.
    body = json.dumps({'images': [entry('slow-{0}'.format(number),
                                        'images/x.tgz', size=10)
                                  for number in range(1000)]}).encode()
    assert len(body) > 100 * 1024
    hostile.drip('/catalog', body, 0.1, piece=4096, chunked=True)
    passed = cli(DESCRIBE, '-U', hostile.url, '--stall-timeout', '2')
    assert passed.returncode == 0, passed
    assert len(passed.lines) == 1000
    config = tmpdir.join('rate.ini')
    config.write('[global]\neustore-min-rate = 1000000\n')
    refused = cli(DESCRIBE, '-U', hostile.url, '--stall-timeout', '2',
                  env={'EUCA_CONFIG_PATH': str(config),
                       'HOME': str(tmpdir.mkdir('other-home'))})
    one_line(refused, 'slower than the 1000000 bytes/s a transfer must '
                      'keep up')
