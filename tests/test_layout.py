# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Image tarball layouts (docs/formats.md, "Image tarballs"), from real
tar.gz files."""

from __future__ import absolute_import

import io
import tarfile

import pytest

from eustore_plugin.images.layout import (LayoutError, MemberRef, analyze,
                                          catalog_fields, image_name_base,
                                          registered_names)


def make_tarball(path, entries):
    """
    entries: (name, content) pairs; content is bytes for a file, None for a
    directory, or ('symlink', target).
    """
    with tarfile.open(path, 'w:gz') as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif isinstance(content, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture
def members(tmpdir):
    """Write a tar.gz of the entries and give back its members as read."""
    def build(entries):
        path = make_tarball(str(tmpdir.join('image.tgz')), entries)
        with tarfile.open(path, 'r:gz') as tar:
            return tar.getmembers()
    return build


def files(*names):
    # Distinct sizes so that a wrong pick shows in the size too.
    return [(name, b'x' * (10 + index)) for index, name in enumerate(names)]


HYPERVISOR_SPECIFIC = [
    ('centos-5.3-x86_64', None),
    ('centos-5.3-x86_64/centos.5-3.x86-64.img', b'D' * 100),
    ('centos-5.3-x86_64/xen-kernel', None),
    ('centos-5.3-x86_64/xen-kernel/vmlinuz-2.6.18-164.el5xen', b'X' * 11),
    ('centos-5.3-x86_64/xen-kernel/initrd-2.6.18-164.el5xen.img', b'Y' * 12),
    ('centos-5.3-x86_64/kvm-kernel', None),
    ('centos-5.3-x86_64/kvm-kernel/vmlinuz-2.6.28-11-generic', b'K' * 13),
    ('centos-5.3-x86_64/kvm-kernel/initrd.img-2.6.28-11-generic', b'R' * 14),
]


def test_single_kernel_in_one_top_directory(members):
    layout = analyze(members([('debian', None)] + files(
        'debian/debian.6-0.x86-64.img', 'debian/vmlinuz-2.6.32-5-amd64',
        'debian/initrd.img-2.6.32-5-amd64', 'debian/README')))
    assert layout.kind == 'single-kernel'
    assert layout.hypervisor is None
    assert layout.machine == MemberRef('debian/debian.6-0.x86-64.img', 10)
    assert layout.kernel == MemberRef('debian/vmlinuz-2.6.32-5-amd64', 11)
    assert layout.ramdisk == MemberRef('debian/initrd.img-2.6.32-5-amd64', 12)
    assert layout.virtualization_type == 'paravirtual'
    assert layout.wanted() == {
        'debian/debian.6-0.x86-64.img': 'machine',
        'debian/vmlinuz-2.6.32-5-amd64': 'kernel',
        'debian/initrd.img-2.6.32-5-amd64': 'ramdisk'}


def test_no_top_directory_and_dot_slash_prefixes(members):
    layout = analyze(members(files('./disk.raw', './vmlinux', './loader')))
    # Names are kept exactly as the archive spells them, for streaming.
    assert layout.machine.name == './disk.raw'
    assert layout.kernel.name == './vmlinux'
    assert layout.ramdisk.name == './loader'
    layout = analyze(members(files('disk.img', 'xen-vmlinuz-3.2',
                                   'initramfs-3.2.gz')))
    assert (layout.kernel.name, layout.ramdisk.name) == (
        'xen-vmlinuz-3.2', 'initramfs-3.2.gz')


def test_hypervisor_specific_choices(members):
    tar_members = members(HYPERVISOR_SPECIFIC)
    xen = analyze(tar_members, hypervisor='xen')
    assert xen.kind == 'hypervisor-specific'
    assert xen.hypervisor == 'xen'
    assert xen.machine.size == 100
    # initrd-*.img is a ramdisk, not a second disk image
    assert xen.kernel.name.endswith('xen-kernel/vmlinuz-2.6.18-164.el5xen')
    assert xen.ramdisk == MemberRef(
        'centos-5.3-x86_64/xen-kernel/initrd-2.6.18-164.el5xen.img', 12)
    kvm = analyze(tar_members, hypervisor='KVM')
    assert kvm.hypervisor == 'kvm'
    assert (kvm.kernel.size, kvm.ramdisk.size) == (13, 14)
    assert kvm.available_hypervisors == ('kvm', 'xen')


def test_hypervisor_specific_needs_a_choice(members):
    tar_members = members(HYPERVISOR_SPECIFIC)
    with pytest.raises(LayoutError) as err:
        analyze(tar_members)
    assert 'choose one of: kvm, xen' in str(err.value)
    with pytest.raises(LayoutError) as err:
        analyze(tar_members, hypervisor='vmware')
    assert 'no kernel for hypervisor "vmware"' in str(err.value)
    assert 'kvm, xen' in str(err.value)
    with pytest.raises(LayoutError) as err:
        analyze(tar_members, hypervisor='universal')
    assert 'no universal kernel' in str(err.value)


def test_universal_kernel_beside_hypervisor_directories(members):
    tar_members = members(HYPERVISOR_SPECIFIC + files(
        'centos-5.3-x86_64/vmlinuz-generic',
        'centos-5.3-x86_64/initrd-generic'))
    assert analyze(tar_members).kernel.name.endswith('/vmlinuz-generic')
    assert analyze(tar_members, 'universal').kind == 'single-kernel'
    assert analyze(tar_members, 'xen').kernel.size == 11
    with pytest.raises(LayoutError) as err:
        analyze(tar_members, hypervisor='vmware')
    assert 'kvm, xen, universal' in str(err.value)


def test_single_kernel_serves_any_hypervisor(members):
    tar_members = members(files('img/a.img', 'img/vmlinuz', 'img/initrd'))
    for hypervisor in ('xen', 'kvm', 'universal', None):
        layout = analyze(tar_members, hypervisor=hypervisor)
        assert layout.kind == 'single-kernel'
        assert layout.hypervisor is None
        assert layout.kernel.name == 'img/vmlinuz'


def test_hvm_images(members):
    only_disk = members(files('win/windows-2008.img', 'win/notes.txt'))
    layout = analyze(only_disk)
    assert layout.kind == 'hvm'
    assert layout.virtualization_type == 'hvm'
    assert (layout.kernel, layout.ramdisk, layout.hypervisor) == (
        None, None, None)
    assert layout.wanted() == {'win/windows-2008.img': 'machine'}
    assert analyze(only_disk, hypervisor='kvm').kind == 'hvm'
    # The catalog's word wins over kernels shipped in the tarball.
    with_kernel = members(files('a/a.img', 'a/vmlinuz', 'a/initrd'))
    layout = analyze(with_kernel, virtualization_type='HVM')
    assert layout.kind == 'hvm' and layout.kernel is None


def test_paravirtual_without_kernel(members):
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/a.img')), virtualization_type='paravirtual')
    assert 'paravirtual' in str(err.value)
    assert 'no kernel' in str(err.value)
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/a.img')), virtualization_type='pv')
    assert 'unknown virtualization type "pv"' in str(err.value)


def test_disk_image_errors(members):
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/vmlinuz', 'a/initrd', 'a/README')))
    assert 'no disk image' in str(err.value)
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/one.img', 'a/two.raw', 'a/vmlinuz')))
    assert 'several disk images (a/one.img, a/two.raw)' in str(err.value)
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/one.img', './a/one.img')))
    assert 'a/one.img twice' in str(err.value)


def test_ambiguous_kernels_and_ramdisks(members):
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/a.img', 'a/vmlinuz-1', 'a/vmlinuz-2',
                              'a/initrd')))
    assert 'several candidate kernels in a/ (a/vmlinuz-1, a/vmlinuz-2)' in \
        str(err.value)
    with pytest.raises(LayoutError) as err:
        analyze(members(HYPERVISOR_SPECIFIC + files(
            'centos-5.3-x86_64/kvm-kernel/initramfs-extra')), 'kvm')
    assert 'several candidate ramdisks in centos-5.3-x86_64/kvm-kernel/' in \
        str(err.value)


def test_kernel_and_ramdisk_pairing(members):
    # A kernel alone is allowed: registered without a ramdisk.
    layout = analyze(members(files('a/a.img', 'a/vmlinuz')))
    assert layout.kernel.name == 'a/vmlinuz' and layout.ramdisk is None
    assert layout.kind == 'single-kernel'
    # A ramdisk alone is not.
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/a.img', 'a/initrd-2.6.img')))
    assert 'ramdisk (a/initrd-2.6.img) but no kernel' in str(err.value)


def test_misplaced_kernel_is_an_error(members):
    with pytest.raises(LayoutError) as err:
        analyze(members(files('a/a.img', 'a/boot/vmlinuz', 'a/boot/initrd')))
    assert 'a/boot/vmlinuz outside' in str(err.value)


def test_links_directories_and_mac_droppings_are_skipped(members):
    layout = analyze(members([
        ('img', None),
        ('img/disk.img', b'd' * 7),
        ('img/vmlinuz-3.2.0', b'k' * 5),
        ('img/vmlinuz', ('symlink', 'vmlinuz-3.2.0')),
        ('img/initrd.img-3.2.0', b'r' * 3),
        ('img/initrd.img', ('symlink', 'initrd.img-3.2.0')),
        ('img/._vmlinuz-3.2.0', b'apple'),
        ('__MACOSX/img/disk.img', b'apple'),
    ]))
    assert layout.machine == MemberRef('img/disk.img', 7)
    assert layout.kernel == MemberRef('img/vmlinuz-3.2.0', 5)
    assert layout.ramdisk == MemberRef('img/initrd.img-3.2.0', 3)


def test_plain_name_size_pairs():
    layout = analyze([('x/x.img', 9), ('x/vmlinuz', 8), ('x/initrd', 7)])
    assert (layout.machine.size, layout.kernel.size, layout.ramdisk.size) == (
        9, 8, 7)


def test_registered_names():
    assert image_name_base('centos-5.3-x86_64.tgz') == \
        'eustore-centos-5_3-x86_64'
    base = image_name_base('http://emis.eucalyptus.com/starter-emis/'
                           'euca-ubuntu-9.04-x86_64.tar.gz')
    assert registered_names(base) == {
        'machine': 'eustore-euca-ubuntu-9_04-x86_64',
        'kernel': 'eustore-euca-ubuntu-9_04-x86_64-kernel',
        'ramdisk': 'eustore-euca-ubuntu-9_04-x86_64-ramdisk'}
    base = image_name_base('/tmp/dl/debian.TGZ')
    assert registered_names(base, pad='0a1b2c3d') == {
        'machine': 'eustore-debian-0a1b2c3d',
        'kernel': 'eustore-debian-0a1b2c3d-kernel',
        'ramdisk': 'eustore-debian-0a1b2c3d-ramdisk'}
    long_names = registered_names(image_name_base('x' * 300 + '.tgz'),
                                  pad='deadbeef')
    assert max(len(name) for name in long_names.values()) == 128
    assert long_names['ramdisk'].endswith('x-deadbeef-ramdisk')
    # A user's --prefix is used as it is.
    assert registered_names('lab-centos')['kernel'] == 'lab-centos-kernel'
    with pytest.raises(LayoutError):
        registered_names('eustore-a', pad='../x')
    with pytest.raises(LayoutError) as err:
        image_name_base('http://store/.tgz')
    assert 'has no file name' in str(err.value)


# ---------------------------------------------------------- catalog_fields

def test_catalog_fields_of_a_hypervisor_specific_tarball(members):
    fields = catalog_fields(members(HYPERVISOR_SPECIFIC))
    assert fields == {'virtualization_type': 'paravirtual',
                      'single-kernel': False,
                      'hypervisors-supported': ['kvm', 'xen']}


def test_catalog_fields_of_a_single_kernel_tarball(members):
    tarball = files('img/disk.img', 'img/vmlinuz-3.2', 'img/initrd-3.2.img')
    fields = catalog_fields(members(tarball), hypervisors=['kvm', 'Xen'])
    assert fields == {'virtualization_type': 'paravirtual',
                      'single-kernel': True,
                      'hypervisors-supported': ['kvm', 'xen']}


def test_catalog_fields_of_a_tarball_without_kernel_is_hvm(members):
    fields = catalog_fields(members(files('f/fedora.raw')), ['kvm'])
    assert fields == {'virtualization_type': 'hvm',
                      'hypervisors-supported': ['kvm']}


def test_catalog_fields_refuse_a_hypervisor_the_tarball_has_no_kernel_for(
        members):
    with pytest.raises(LayoutError) as caught:
        catalog_fields(members(HYPERVISOR_SPECIFIC), ['kvm', 'vmware'])
    assert 'no kernel for hypervisor vmware' in str(caught.value)
    assert 'kvm, xen' in str(caught.value)


def test_catalog_fields_refuse_a_paravirtual_claim_without_kernel(members):
    with pytest.raises(LayoutError) as caught:
        catalog_fields(members(files('f/fedora.img')),
                       virtualization_type='paravirtual')
    assert 'paravirtual' in str(caught.value)


def test_catalog_fields_refuse_what_install_would_refuse(members):
    # The kvm directory has a ramdisk but no kernel: installing with -k kvm
    # would fail, so publishing must.
    tarball = files('c/disk.img', 'c/xen-kernel/vmlinuz',
                    'c/xen-kernel/initrd.img', 'c/kvm-kernel/initrd.img')
    with pytest.raises(LayoutError) as caught:
        catalog_fields(members(tarball))
    assert 'no kernel' in str(caught.value)
    with pytest.raises(LayoutError):
        catalog_fields(members(files('a.img', 'b.img')))
