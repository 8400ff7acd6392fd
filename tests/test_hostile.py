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
import io
import json
import os
import os.path
import signal
import stat
import subprocess
import sys
import time
import uuid

import pytest

from eustore_plugin.backend import _FEEDER, uses_euca2ools
from eustore_plugin.cloud import CloudError
from eustore_plugin.layout import LayoutError, analyze, catalog_fields
from tests.support.commands import clean_env
from tests.support.demostore import TARBALLS
from tests.support.gpg import missing_tools
from tests.support.hostile import (
    CLEAR, RAW_CONTROLS, RETURN, TITLE, HostileStore, RunningCommand,
    deep_json, device_member, entry, file_member, gzip_bomb, link_member,
    outside_address, write_catalog, write_signed_catalog, write_tarball)
from tests.support.http import StoreServer, header
from tests.support.moto import direct_cloud
from tests.test_install import (  # noqa: F401 (fixtures)
    admin, cloud, eucarc, install, installed_ids, keys, non_admin, proxy,
    store)

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
        one_line(result, 'is not the one the catalog describes')
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
