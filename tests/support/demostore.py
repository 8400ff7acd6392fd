# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A small image store in a directory: a catalog and three tarballs, one of
each layout eustore-install-image handles (single kernel, hypervisor-specific
kernels, HVM).  The "images" are a few hundred KiB of seeded data, enough to
see the tools work without a real cloud.  The same seeds always give the same
store, checksum names and all.
"""

from __future__ import absolute_import

import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib

from tests.support.images import image_bytes

# The demo store's tarballs, by the operating system of their image.
TARBALLS = {
    'centos': 'demo-centos-6.5-x86_64.tgz',
    'debian': 'demo-debian-7-i386.tgz',
    'fedora': 'demo-fedora-20-x86_64-hvm.tgz',
}
# How tests publish them into a store of their own.
METADATA = {
    'centos': ['-i', 'centos-demo', '-s', 'CentOS demo', '-a', 'x86_64',
               '--os', 'centos', '--image-version', '6.5'],
    'debian': ['-i', 'debian-demo', '-s', 'Debian demo', '-a', 'i386',
               '--os', 'debian'],
    'fedora': ['-i', 'fedora-demo', '-s', 'Fedora demo', '-a', 'x86_64',
               '--os', 'fedora'],
}


def add_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1326553503
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_tarball(path, top, members):
    # gzip's header time is pinned so that the same store is written every
    # time, checksum names and all.
    with open(path, 'wb') as raw:
        with gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode='w') as tar:
                for name, (seed, size) in sorted(members.items()):
                    add_member(tar, top + '/' + name, image_bytes(size, seed))


def describe(path, url, **fields):
    with open(path, 'rb') as tarball:
        data = tarball.read()
    entry = dict(fields, url=url, size=len(data),
                 sha256=hashlib.sha256(data).hexdigest(),
                 contact='images@example.com', recipe='demo',
                 date='20261124120000')
    entry['stamp'] = entry['sha256'][:4] + '-' + entry['sha256'][4:8]
    return entry


def write_demo_store(store):
    """Write the store into the directory ``store``; returns its catalog."""
    images_dir = os.path.join(store, 'images')
    if not os.path.isdir(images_dir):
        os.makedirs(images_dir)
    catalog = []

    path = os.path.join(images_dir, 'demo-centos-6.5-x86_64.tgz')
    write_tarball(path, 'demo-centos-6.5-x86_64', {
        'demo-centos-6.5-x86_64.img': (1, 400 * 1024),
        'vmlinuz-2.6.32-431.el6.x86_64': (2, 60 * 1024),
        'initramfs-2.6.32-431.el6.x86_64.img': (3, 40 * 1024)})
    catalog.append(describe(
        path, 'images/demo-centos-6.5-x86_64.tgz',
        name='centos-x86_64-demo', os='centos', architecture='x86_64',
        version='6.5', description='CentOS 6.5 demo image, Single Kernel',
        **{'single-kernel': 'True', 'hypervisors-supported': ['xen', 'kvm']}))

    path = os.path.join(images_dir, 'demo-debian-7-i386.tgz')
    write_tarball(path, 'demo-debian-7-i386', {
        'demo-debian-7-i386.img': (4, 300 * 1024),
        'xen-kernel/vmlinuz-3.2.0-4-686-pae': (5, 50 * 1024),
        'xen-kernel/initrd.img-3.2.0-4-686-pae': (6, 30 * 1024),
        'kvm-kernel/vmlinuz-3.2.0-4-486': (7, 50 * 1024),
        'kvm-kernel/initrd.img-3.2.0-4-486': (8, 30 * 1024)})
    entry = describe(
        path, 'images/demo-debian-7-i386.tgz', os='debian',
        architecture='i386', version='7',
        description='Debian 7 demo image, Hypervisor-Specific Kernels',
        **{'single-kernel': 'False', 'hypervisors-supported': ['xen', 'kvm']})
    # The euca2ools 2.x way to name an image: a checksum of its tarball.
    with open(path, 'rb') as tarball:
        md5_hex = hashlib.md5(tarball.read()).hexdigest()
    entry['name'] = '{0:010d}'.format(
        zlib.crc32(md5_hex.encode('ascii')) & 0xffffffff)
    catalog.append(entry)

    path = os.path.join(images_dir, 'demo-fedora-20-x86_64-hvm.tgz')
    write_tarball(path, 'demo-fedora-20-x86_64-hvm', {
        'demo-fedora-20-x86_64-hvm.raw': (9, 500 * 1024)})
    catalog.append(describe(
        path, 'images/demo-fedora-20-x86_64-hvm.tgz',
        name='fedora-x86_64-hvm-demo', os='fedora', architecture='x86_64',
        version='20', description='Fedora 20 demo image, HVM',
        virtualization_type='hvm', **{'hypervisors-supported': ['kvm']}))

    with open(os.path.join(store, 'catalog'), 'w') as out:
        json.dump({'images': catalog}, out, indent=2, sort_keys=True)
    return catalog
