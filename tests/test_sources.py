# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The image stores that exist today, end to end: a simplestreams mirror and a
virt-builder index in their real formats (tests/support/publicstores.py),
clearsigned with a test key, served from loopback; listed, checked, and
installed into moto, the bundles decoded back with openssl, gzip and tar to
the source disks' bytes.  Bad input fails in one line and leaves nothing in
the cloud.
"""

from __future__ import absolute_import

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from tests.support.commands import COMMANDS
from tests.support.http import StoreServer
from tests.support.install import (INSTALL, fetch_and_decode,
                                   installed_ids, tags_sent)
from tests.support.moto import which
from tests.support.publicstores import (MIRROR_PRODUCT, MIRROR_VERSIONS,
                                        BuilderIndex, Mirror)

DESCRIBE = 'eustore-describe-images'
CHECK = 'eustore-check-store'
assert DESCRIBE in COMMANDS and CHECK in COMMANDS

pytestmark = pytest.mark.skipif(
    not (which('qemu-img') and which('xz')),
    reason='qemu-img and xz make and read the test disks: run scripts/setup '
    '(it installs qemu-utils and xz-utils)')


def cells(result):
    return [line.split('\t') for line in result.lines]


# ---------------------------------------------------------------- listing

def test_a_mirror_lists_its_newest_version(cli, mirror, trusted):
    result = cli(DESCRIBE, '-U', mirror.url, *trusted)
    assert result.returncode == 0, result
    newest = mirror.content.pubname(MIRROR_VERSIONS[-1])
    # Attributes inherited from the document and the product, arch mapped.
    assert cells(result) == [[newest, 'ubuntu', 'x86_64', '24.04', '',
                              '24.04 LTS']]
    assert result.stderr == ''  # signed by a trusted key: nothing to say
    # The signed index and products file were read, not the unsigned ones.
    paths = mirror.paths_requested()
    assert '/streams/v1/index.sjson' in paths
    assert '/streams/v1/com.example.cloud:released:download.sjson' in paths
    assert '/streams/v1/index.json' not in paths


def test_a_mirror_lists_every_version_and_its_details(cli, mirror, trusted):
    result = cli(DESCRIBE, '-U', mirror.url, '--all-versions', '-v',
                 *trusted)
    assert result.returncode == 0, result
    rows = cells(result)
    assert [row[0] for row in rows] == [
        mirror.content.pubname(version)
        for version in reversed(MIRROR_VERSIONS)]
    # -v: release, serial, label, files.
    assert rows[0][6:] == ['noble', MIRROR_VERSIONS[-1], 'release',
                           'disk1.img,uec.tar.gz']
    listing = json.loads(cli(DESCRIBE, '-U', mirror.url, '--json',
                             *trusted).stdout)
    assert listing[0]['store_format'] == 'simplestreams'
    assert listing[0]['disk']['disk_format'] == 'qcow2'
    assert listing[0]['location'].endswith('.tar.gz')


def test_a_virt_builder_index_lists_visible_templates(cli, builder,
                                                      trusted):
    result = cli(DESCRIBE, '-U', builder.url + 'index.asc', '-v', *trusted)
    assert result.returncode == 0, result
    rows = cells(result)
    # One template for two architectures; the hidden one not listed.
    assert [(row[0], row[2]) for row in rows] == [
        ('fedora-39', 'x86_64'), ('fedora-39', 'arm64')]
    assert rows[0][:6] == ['fedora-39', 'fedora', 'x86_64', '3', '',
                           'Fedora 39']
    assert rows[0][6:] == ['3', 'fedora39', 'raw', 'Fedora 39 server.']
    only_arm = cli(DESCRIBE, '-U', builder.url, '-a', 'arm64', *trusted)
    assert [row[2] for row in cells(only_arm)] == ['arm64']
    # A directory holding an index is found too.
    assert '/index.asc' in builder.paths_requested()


def test_an_unsigned_index_gets_the_unsigned_warning(cli, builder):
    result = cli(DESCRIBE, '-U', builder.url + 'index')
    assert result.returncode == 0, result
    assert result.stderr.splitlines() == [
        '{0}: warning: the index at {1}index is not signed, so the images '
        'it lists cannot be verified'.format(DESCRIBE, builder.url)]


def test_a_signature_by_an_untrusted_key_is_refused(cli, builder, mirror,
                                                    stranger_key):
    for url in (builder.url + 'index.asc', mirror.url):
        result = cli(DESCRIBE, '-U', url, '--trusted-key',
                     stranger_key.public_file)
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert line.startswith('{0}: error: refusing the '.format(DESCRIBE))
        assert result.stdout == ''


def test_a_document_of_neither_format_is_explained(cli, store_dir, store):
    store_dir.join('index').write('just some text\n')
    result = cli(DESCRIBE, '-U', store.url + 'index')
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        'is neither an image store catalog, a simplestreams index nor a '
        'virt-builder index; check the store URL')


def test_check_store_verifies_every_file(cli, builder, trusted):
    result = cli(CHECK, '-U', builder.url, *trusted)
    assert result.returncode == 0, result
    assert [row[:2] for row in cells(result)] == [
        ['OK', 'catalog'], ['OK', 'fedora-39'], ['OK', 'fedora-39'],
        ['OK', 'scratch']]


# ---------------------------------------------------------------- install

def test_the_uec_tarball_item_installs_kernel_ramdisk_and_image(
        cli, mirror, trusted, env, admin, proxy, cloud, keys, tmpdir):
    newest = mirror.content.pubname(MIRROR_VERSIONS[-1])
    result = cli(INSTALL, '-i', newest, '-b', 'ss-uec', '--pad-name',
                 *trusted, env=env(mirror.url))
    ids = installed_ids(result)
    assert sorted(ids) == ['image', 'kernel', 'ramdisk']
    calls = proxy.form_requests('RegisterImage')
    machine = calls[-1]
    assert machine['KernelId'] == ids['kernel']
    assert machine['Architecture'] == 'x86_64'
    image = fetch_and_decode(cloud, 'ss-uec', machine['ImageLocation'].split(
        '/', 1)[1], keys[1], str(tmpdir.join('machine')))
    assert image == mirror.content.disks[MIRROR_VERSIONS[-1]]
    kernel = fetch_and_decode(cloud, 'ss-uec', calls[0]['ImageLocation']
                              .split('/', 1)[1], keys[1],
                              str(tmpdir.join('kernel')))
    assert kernel == mirror.content.kernels[MIRROR_VERSIONS[-1]]


def test_the_qcow2_disk_item_installs_as_hvm(cli, mirror, trusted, env,
                                             non_admin, proxy, cloud, keys,
                                             tmpdir):
    # The product's name installs its newest version.
    result = cli(INSTALL, '-i', MIRROR_PRODUCT, '-b', 'ss-disk',
                 '--virtualization-type', 'hvm', '--pad-name', *trusted,
                 env=env(mirror.url))
    assert list(installed_ids(result)) == ['image']
    (call,) = proxy.form_requests('RegisterImage')
    assert call['VirtualizationType'] == 'hvm' and 'KernelId' not in call
    image = fetch_and_decode(cloud, 'ss-disk', call['ImageLocation'].split(
        '/', 1)[1], keys[1], str(tmpdir.join('machine')))
    # qemu-img made the raw disk back out of the qcow2, byte for byte.
    assert image == mirror.content.disks[MIRROR_VERSIONS[-1]]


@pytest.mark.parametrize('keep', [False, True])
def test_an_xz_virt_builder_template_installs_as_hvm(
        cli, builder, trusted, env, non_admin, proxy, cloud, keys, tmpdir,
        keep):
    extra = ['-d', str(tmpdir.mkdir('keep'))] if keep else []
    result = cli(INSTALL, '-i', 'fedora-39', '-a', 'arm64', '-b',
                 'vb-disk', '--pad-name', *(trusted + extra),
                 env=env(builder.url))
    assert list(installed_ids(result)) == ['image']
    (call,) = proxy.form_requests('RegisterImage')
    assert call['VirtualizationType'] == 'hvm'
    assert call['Architecture'] == 'arm64'
    image = fetch_and_decode(cloud, 'vb-disk', call['ImageLocation'].split(
        '/', 1)[1], keys[1], str(tmpdir.join('machine')))
    assert image == builder.content.disks['arm']
    values = tags_sent(proxy, installed_ids(result)['image'])
    assert values['eustore:format'] == 'virt-builder'
    assert values['eustore:checksum'].startswith('sha512:')


def nothing_in_the_cloud(proxy):
    return not [request for request in proxy.requests
                if request[0] == 'PUT'] and \
        not proxy.form_requests('RegisterImage')


def test_a_wrong_sha512_is_refused_and_leaves_nothing(
        cli, tmpdir, signing_key, trusted, env, non_admin, proxy):
    root = tmpdir.mkdir('bad-builder')
    BuilderIndex(str(root), signer=signing_key,
                 overrides={'fedora_sha512': 'ab' * 64})
    server = StoreServer(str(root)).start()
    try:
        result = cli(INSTALL, '-i', 'fedora-39', '-a', 'x86_64', '-b',
                     'vb-bad', *trusted, env=env(server.url))
    finally:
        server.stop()
    assert result.returncode == 1
    assert 'sha512 should be ' + 'ab' * 64 in result.stderr
    assert len(result.messages) == 1
    assert not proxy.form_requests('RegisterImage')
    # What was uploaded while streaming is gone again.
    assert 'was removed' in result.stderr


def test_a_disk_over_10_gib_is_refused_before_downloading(
        cli, tmpdir, signing_key, trusted, env, non_admin, proxy):
    root = tmpdir.mkdir('big-builder')
    BuilderIndex(str(root), signer=signing_key,
                 overrides={'fedora_size': 11 * 1024 ** 3})
    server = StoreServer(str(root)).start()
    try:
        result = cli(INSTALL, '-i', 'fedora-39', '-a', 'x86_64', '-b',
                     'vb-big', *trusted, env=env(server.url))
        assert '/fedora-39.xz' not in server.paths_requested()
    finally:
        server.stop()
    assert result.returncode == 1
    assert 'is a disk of {0} bytes (11.0 GiB), over the 10 GiB'.format(
        11 * 1024 ** 3) in result.stderr
    assert nothing_in_the_cloud(proxy)


def test_a_missing_item_is_explained_and_leaves_nothing(
        cli, mirror_dir, trusted, env, non_admin, proxy, tmpdir):
    # A copy of the mirror whose newest disk item has gone.
    root = str(tmpdir.join('mirror'))
    shutil.copytree(mirror_dir.dir, root)
    os.remove(os.path.join(root, mirror_dir.items[MIRROR_VERSIONS[-1]][
        'disk1.img']))
    server = StoreServer(root).start()
    try:
        result = cli(INSTALL, '-i', MIRROR_PRODUCT, '-b', 'ss-missing',
                     '--virtualization-type', 'hvm', *trusted,
                     env=env(server.url))
    finally:
        server.stop()
    assert result.returncode == 1
    assert '404' in result.stderr and len(result.messages) == 1
    assert not proxy.form_requests('RegisterImage')


@pytest.mark.parametrize('fault', ['not-qcow2', 'backing-file'])
def test_a_qcow2_that_is_not_one_of_its_own_is_refused(
        cli, tmpdir, signing_key, trusted, env, non_admin, proxy, fault):
    root = tmpdir.mkdir('odd-mirror')
    Mirror(str(root), signer=signing_key, workdir=str(tmpdir.mkdir('w')))
    products_path = root.join('streams', 'v1',
                              'com.example.cloud:released:download.json')
    products = json.loads(products_path.read())
    newest = products['products'][MIRROR_PRODUCT]['versions'][
        MIRROR_VERSIONS[-1]]['items']['disk1.img']
    disk_path = str(root.join(newest['path']))
    if fault == 'not-qcow2':
        data = b'QFI\xfb' + b'\0' * 20 + b'\0\0\0\0\0\x20\0\0' + \
            b'junk' * 1000
        with open(disk_path, 'wb') as out:
            out.write(data)
    else:
        # A qcow2 that would read a file of the user's host into the image.
        os.remove(disk_path)
        subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'qcow2',
                               '-b', '/etc/hostname', '-F', 'raw',
                               disk_path])
    with open(disk_path, 'rb') as source:
        data = source.read()
    newest.update(size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                  md5=hashlib.md5(data).hexdigest())
    text = json.dumps(products).encode('utf-8')
    products_path.write_binary(text)
    root.join('streams', 'v1', 'com.example.cloud:released:download.sjson'
              ).write_binary(signing_key.clearsign(text))
    server = StoreServer(str(root)).start()
    try:
        result = cli(INSTALL, '-i', MIRROR_PRODUCT, '-b', 'ss-odd',
                     '--virtualization-type', 'hvm', *trusted,
                     env=env(server.url))
    finally:
        server.stop()
    assert result.returncode == 1
    assert len(result.messages) == 1
    expected = 'is not a qcow2 image' if fault == 'not-qcow2' else \
        'names a backing file (/etc/hostname)'
    assert expected in result.stderr
    assert nothing_in_the_cloud(proxy)
