# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Image stores in today's public formats, written into a directory for a
loopback server: a simplestreams mirror (an index, a products file with
attributes at every level and several versions, UEC tarball and qcow2 disk
items) and a virt-builder index (an xz raw disk, notes, a hidden entry, one
template for two architectures), each clearsigned with a test key if one is
given, with small generated disks whose bytes the tests compare with what
lands in the cloud.
"""

from __future__ import absolute_import

import collections
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

from tests.support.images import image_bytes

MIRROR_PRODUCT = 'com.example.cloud:server:24.04:amd64'
MIRROR_PRODUCTS_PATH = 'streams/v1/com.example.cloud:released:download.json'
# Versions of the product, oldest first, and what the newest is called.
MIRROR_VERSIONS = ('20240101', '20240315.1')
DISK_SIZE = 2 * 1024 * 1024  # a multiple of 512, as disks are


def _digests(data):
    return {'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
            'md5': hashlib.md5(data).hexdigest()}


def _write(path, data):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    with open(path, 'wb') as out:
        out.write(data)


def uec_tarball(top, disk, kernel, ramdisk):
    """A UEC-style tar.gz: a disk image, a kernel and a ramdisk."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode='wb', mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode='w') as tar:
            for name, data in ((top + '.img', disk),
                               (top + '-vmlinuz-generic', kernel),
                               (top + '-initrd-generic', ramdisk)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 1700000000
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def qcow2_of(raw, workdir, name):
    """The qcow2 ``qemu-img convert`` makes of the raw disk ``raw``."""
    raw_path = os.path.join(workdir, name + '.raw')
    qcow2_path = os.path.join(workdir, name + '.qcow2')
    _write(raw_path, raw)
    subprocess.check_call(['qemu-img', 'convert', '-q', '-f', 'raw', '-O',
                           'qcow2', raw_path, qcow2_path])
    with open(qcow2_path, 'rb') as source:
        return source.read()


def disk_bytes(seed):
    return image_bytes(DISK_SIZE, seed=seed)


class Mirror(object):
    """A simplestreams mirror written under ``root``: what it holds."""

    def __init__(self, root, signer=None, workdir=None):
        self.root = root
        self.disks = {}     # version -> raw disk bytes (of both items)
        self.kernels = {}
        self.items = collections.OrderedDict()  # version -> {ftype: path}
        workdir = workdir or root
        versions = {}
        for number, version in enumerate(MIRROR_VERSIONS):
            disk = disk_bytes(100 + number)
            kernel = image_bytes(30000, seed=200 + number)
            ramdisk = image_bytes(20000, seed=300 + number)
            self.disks[version] = disk
            self.kernels[version] = kernel
            tarball = uec_tarball('example-24.04-server-' + version, disk,
                                  kernel, ramdisk)
            qcow2 = qcow2_of(disk, workdir, 'disk-' + version)
            base = 'server/releases/24.04/release-{0}/'.format(version)
            files = {'uec.tar.gz': (base + 'example-24.04-server-amd64.'
                                    'tar.gz', tarball),
                     'disk1.img': (base + 'example-24.04-server-amd64.img',
                                   qcow2)}
            items = {}
            self.items[version] = {}
            for ftype, (path, data) in files.items():
                _write(os.path.join(root, path), data)
                items[ftype] = dict(_digests(data), ftype=ftype, path=path)
                self.items[version][ftype] = path
            versions[version] = {'items': items, 'label': 'release',
                                 'pubname': 'example-24.04-amd64-server-' +
                                 version}
        # Attributes at every level: os at the top, arch and release on the
        # product, version and label lower down.
        products = {
            'content_id': 'com.example.cloud:released:download',
            'datatype': 'image-downloads', 'format': 'products:1.0',
            'os': 'ubuntu', 'updated': 'Fri, 15 Mar 2024 12:00:00 +0000',
            'products': {MIRROR_PRODUCT: {
                'arch': 'amd64', 'release': 'noble',
                'release_title': '24.04 LTS', 'version': '24.04',
                'versions': versions}}}
        index = {
            'format': 'index:1.0', 'updated': products['updated'],
            'index': {'com.example.cloud:released:download': {
                'datatype': 'image-downloads', 'format': 'products:1.0',
                'path': MIRROR_PRODUCTS_PATH,
                'products': [MIRROR_PRODUCT]},
                'com.example.cloud:released:aws': {
                    'datatype': 'image-ids', 'format': 'products:1.0',
                    'path': 'streams/v1/com.example.cloud:released:aws.json',
                    'products': [MIRROR_PRODUCT]}}}
        self._document(MIRROR_PRODUCTS_PATH, products, signer)
        self._document('streams/v1/index.json', index, signer,
                       products_suffix=True)

    def _document(self, path, data, signer, products_suffix=False):
        text = json.dumps(data, indent=1, sort_keys=True).encode('utf-8')
        _write(os.path.join(self.root, path), text)
        if signer is not None:
            if products_suffix:
                # A signed index names the signed products files.
                signed = json.loads(text.decode('utf-8'))
                for entry in signed['index'].values():
                    entry['path'] = entry['path'][:-len('.json')] + '.sjson'
                text = json.dumps(signed, indent=1,
                                  sort_keys=True).encode('utf-8')
            _write(os.path.join(self.root, path[:-len('.json')] + '.sjson'),
                   signer.clearsign(text))

    @property
    def newest(self):
        return MIRROR_VERSIONS[-1]

    def pubname(self, version):
        return 'example-24.04-amd64-server-' + version


VIRT_BUILDER_INDEX = u'''\
# A private virt-builder repository.
[fedora-39]
name=Fedora 39
osinfo=fedora39
arch=x86_64
file=fedora-39.xz
checksum[sha512]={fedora_sha512}
format=raw
size={fedora_size}
compressed_size={fedora_compressed}
revision=3
expand=/dev/sda3
notes=Fedora 39 server.
{one_space}
 This template has a root password set by virt-builder.

[fedora-39]
name=Fedora 39
osinfo=fedora39
arch=aarch64
file=fedora-39-aarch64.xz
checksum[sha512]={arm_sha512}
format=raw
size={arm_size}
compressed_size={arm_compressed}
revision=1

[scratch]
name=Scratch disk
file=scratch.xz
checksum={scratch_sha512}
format=raw
size={scratch_size}
hidden=true
'''


def xz(data):
    process = subprocess.Popen(['xz', '-c', '-3'], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    out, _ = process.communicate(data)
    return out


class BuilderIndex(object):
    """A virt-builder index written under ``root``: what it holds."""

    def __init__(self, root, signer=None, overrides=None):
        self.root = root
        self.disks = {}
        fields = {}
        for key, name, seed in (('fedora', 'fedora-39.xz', 400),
                                ('arm', 'fedora-39-aarch64.xz', 401),
                                ('scratch', 'scratch.xz', 402)):
            disk = disk_bytes(seed)
            packed = xz(disk)
            self.disks[key] = disk
            _write(os.path.join(root, name), packed)
            fields[key + '_sha512'] = hashlib.sha512(packed).hexdigest()
            fields[key + '_size'] = len(disk)
            fields[key + '_compressed'] = len(packed)
        # A line of one space: an empty line of the notes.
        fields['one_space'] = ' '
        fields.update(overrides or {})
        text = VIRT_BUILDER_INDEX.format(**fields).encode('utf-8')
        _write(os.path.join(root, 'index'), text)
        if signer is not None:
            _write(os.path.join(root, 'index.asc'), signer.clearsign(text))
