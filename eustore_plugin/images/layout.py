# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What to install from an image tarball, decided from its member list alone.

This module does no I/O.  It is given the tarball's members (``TarInfo``
objects, or anything with ``name``, ``size`` and ``isfile()``, or plain
``(name, size)`` pairs) and says which one is the disk image, the kernel and
the ramdisk (docs/formats.md, "Image tarballs").

A tar.gz can only be read front to back: gzip has no index, so "seek to the
kernel" means decompressing everything before it.  Install therefore reads
the tarball once: :func:`provisional_role` judges each member by its own
name as it streams by (its bundle begins there and then), and at the
archive's end :func:`analyze` judges the whole member list by the rules
below.  The two must agree before anything is registered, member by exact
archive name -- the ``name`` of each :class:`MemberRef`, kept as the archive
spells it, ``./`` prefixes and all; :meth:`ImageLayout.wanted` maps those
names to their roles.

The rules
---------
No member's name may start with "-": such a name is an option to any
program it is handed to as an argument (``tar -xzOf TARBALL --index-file=
...`` truncates a file), and no image tarball needs one (docs/threat-model.md,
"euca2ools backend").

Only regular files count: directories, symlinks and hard links are skipped
(a ``vmlinuz -> vmlinuz-2.6.x`` symlink is not a second kernel), as are
dot-files such as the ``._*`` AppleDouble files macOS tar adds, and anything
under ``__MACOSX/``.  Leading ``/`` and ``./`` are ignored.

A file's role comes from its base name, case-insensitively, in this order:

- kernel: contains ``vmlinu`` (vmlinuz, vmlinux, xen-vmlinuz-...);
- ramdisk: contains ``initrd``, ``initramfs`` or ``loader``;
- disk image: ends in ``.img`` or ``.raw``.

Kernels and ramdisks come first because CentOS and Fedora call their
ramdisks ``initrd-<version>.img``.

There must be exactly one disk image.  The directory holding it is the
image's directory (normally the tarball's one top directory, or the root of
a tarball with none).  Kernels and ramdisks may be:

- beside the disk image: the single-kernel ("universal") layout;
- in ``<hypervisor>-kernel/`` directories beside the disk image, each with
  its own kernel and ramdisk (``xen-kernel/``, ``kvm-kernel/``): the
  hypervisor-specific layout.

A kernel or ramdisk anywhere else is an error rather than being ignored: an
overlooked kernel would make a paravirtual image look like an HVM one.

Which kernel is used:

- ``virtualization_type='hvm'``: none; the layout is ``hvm`` whatever the
  tarball holds (an HVM guest boots from its own disk).
- ``hypervisor`` None or ``'universal'``: the kernel beside the disk image.
  If there is none but there are hypervisor directories, the user must pick
  one: guessing could register a Xen kernel on a KVM cloud.
- ``hypervisor='xen'`` (or any other name): that hypervisor's directory.  A
  single-kernel tarball has no hypervisor directories; its one kernel is
  meant for every hypervisor, so it is used whatever was asked for.
- No kernel and no ramdisk at all: an HVM image, unless
  ``virtualization_type='paravirtual'`` said otherwise (then an error: a
  paravirtual image cannot boot without a kernel).

In the chosen place there may be at most one kernel and one ramdisk.  A
ramdisk without a kernel is an error (nothing can boot it; most likely the
kernel's file is misnamed).  A kernel without a ramdisk is allowed and
registered without one, as ``euca-register`` and EC2 allow: Xen-style
paravirtual kernels with built-in drivers boot without an initrd, and a user
holding such a tarball would otherwise have no way to install it at all.
"""

from __future__ import absolute_import

import collections
import posixpath
import re

import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.urlkeys import unquote_path

KERNEL_MARKERS = ('vmlinu',)
RAMDISK_MARKERS = ('initrd', 'initramfs', 'loader')
DISK_SUFFIXES = ('.img', '.raw')
HYPERVISOR_DIR_SUFFIX = '-kernel'
UNIVERSAL = 'universal'
VIRTUALIZATION_TYPES = ('paravirtual', 'hvm')
TARBALL_SUFFIXES = ('.tar.gz', '.tgz')
# EC2 image names: 3-128 of these characters.
_NAME_CHARS_RE = re.compile(r"[^A-Za-z0-9()\[\] /'@_-]")
_PAD_RE = re.compile(r'^[A-Za-z0-9]+$')
# What EC2 takes in an image name: the same, and dots.
_ENTRY_NAME_CHARS_RE = re.compile(r"[^A-Za-z0-9()\[\] ./'@_-]")
MAX_NAME_LENGTH = 128

SINGLE_KERNEL = 'single-kernel'
HYPERVISOR_SPECIFIC = 'hypervisor-specific'
HVM = 'hvm'


class LayoutError(ValueError):
    """The tarball's members do not make an installable image."""


class MemberRef(collections.namedtuple('MemberRef', 'name size')):
    """One tarball member: its exact archive name and its size."""
    __slots__ = ()


class ImageLayout(object):
    """What install needs from one tarball."""

    def __init__(self, machine, kernel=None, ramdisk=None, hypervisor=None,
                 kind=SINGLE_KERNEL, available_hypervisors=()):
        self.machine = machine
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.hypervisor = hypervisor
        self.kind = kind
        # Hypervisor directories the tarball has, whichever was chosen.
        self.available_hypervisors = tuple(available_hypervisors)

    @property
    def virtualization_type(self):
        """What RegisterImage should be told for the machine image."""
        return 'hvm' if self.kind == HVM else 'paravirtual'

    def wanted(self):
        """{exact archive name: 'machine' | 'kernel' | 'ramdisk'}."""
        roles = {self.machine.name: 'machine'}
        if self.kernel is not None:
            roles[self.kernel.name] = 'kernel'
        if self.ramdisk is not None:
            roles[self.ramdisk.name] = 'ramdisk'
        return roles

    def __repr__(self):
        return ('ImageLayout(kind={0!r}, hypervisor={1!r}, machine={2!r}, '
                'kernel={3!r}, ramdisk={4!r})'.format(
                    self.kind, self.hypervisor, self.machine, self.kernel,
                    self.ramdisk))


# ------------------------------------------------------------------ members

def _member_name(member):
    name = member[0] if isinstance(member, tuple) else member.name
    if isinstance(name, six.binary_type):
        name = name.decode('utf-8', 'replace')
    return name


def _refuse_option_names(members):
    """LayoutError for the first member (of any type) named like an
    option."""
    for member in members:
        name = _member_name(member)
        if name.startswith('-'):
            raise LayoutError(
                u'the tarball holds a member named "{0}", which a program '
                u'given it as an argument (tar) would take for an option; '
                u'no image tarball has one: repack it'.format(name))


def _regular_files(members):
    """(MemberRef, path components) of every regular file that counts."""
    for member in members:
        if isinstance(member, tuple):
            name, size = member
        else:
            if not member.isfile():
                continue
            name, size = member.name, member.size
        if isinstance(name, six.binary_type):
            name = name.decode('utf-8', 'replace')
        parts = tuple(part for part in name.split('/')
                      if part not in ('', '.'))
        if not parts or parts[-1].startswith('.') or '__MACOSX' in parts:
            continue
        yield MemberRef(name, int(size)), parts


def _role_of(basename):
    lowered = basename.lower()
    if any(marker in lowered for marker in KERNEL_MARKERS):
        return 'kernel'
    if any(marker in lowered for marker in RAMDISK_MARKERS):
        return 'ramdisk'
    if lowered.endswith(DISK_SUFFIXES):
        return 'machine'
    return None


def _names(refs):
    return ', '.join(ref.name for ref in refs)


def _shown_dir(parts):
    return '/'.join(parts) + '/' if parts else 'the top of the tarball'


def analyze(members, hypervisor=None, virtualization_type=None):
    """
    Decide what to install from a tarball's ``members``.  ``hypervisor`` is
    the user's choice of kernel directory ('xen', 'kvm', or 'universal' for
    the single-kernel case); ``virtualization_type`` the catalog's
    ('paravirtual', 'hvm' or None).  Returns an :class:`ImageLayout`;
    raises :class:`LayoutError`.
    """
    virt = _normalize_virtualization_type(virtualization_type)
    if hypervisor is not None:
        hypervisor = six.text_type(hypervisor).strip().lower() or None
    members = list(members)
    _refuse_option_names(members)
    found = _files_by_role(members)
    disks = found['machine']
    if not disks:
        raise LayoutError(
            'the tarball holds no disk image (a file ending in {0} that is '
            'not a kernel or ramdisk); is it an image store tarball?'
            .format(' or '.join(DISK_SUFFIXES)))
    if len(disks) > 1:
        raise LayoutError(
            'the tarball holds several disk images ({0}); an image tarball '
            'holds exactly one'.format(_names(ref for ref, _ in disks)))
    machine, machine_parts = disks[0]
    home = machine_parts[:-1]
    places = _kernel_places(found, home)
    available = sorted(place for place in places if place is not None)

    if virt == 'hvm':
        return ImageLayout(machine, kind=HVM, available_hypervisors=available)
    if not places:
        if virt == 'paravirtual':
            raise LayoutError(
                'the catalog says this image is paravirtual, but its tarball '
                'holds no kernel (no file named like vmlinuz beside {0}); '
                'the store entry is wrong, tell its operator'.format(
                    machine.name))
        return ImageLayout(machine, kind=HVM)

    chosen, kind = _choose_kernel(places, hypervisor, available)
    kernel, ramdisk = _pick(places[chosen], home, chosen)
    return ImageLayout(machine, kernel=kernel, ramdisk=ramdisk,
                       hypervisor=chosen, kind=kind,
                       available_hypervisors=available)


def _files_by_role(members):
    """{role: [(ref, path parts)]} of the regular files that look like a
    disk image, kernel or ramdisk; a path given twice is refused."""
    found = {'machine': [], 'kernel': [], 'ramdisk': []}
    seen = {}
    for ref, parts in _regular_files(members):
        role = _role_of(parts[-1])
        if role is None:
            continue
        if parts in seen:
            raise LayoutError(
                'the tarball holds {0} twice ({1} and {2}); repack it with '
                'one copy'.format('/'.join(parts), seen[parts].name,
                                  ref.name))
        seen[parts] = ref
        found[role].append((ref, parts))
    return found


def _kernel_places(found, home):
    """
    Kernels and ramdisks by where they are: {place: {role: [ref]}}, place
    None beside the disk image (in ``home``), else the hypervisor whose
    "<hypervisor>-kernel/" directory holds them.
    """
    places = {}
    for role in ('kernel', 'ramdisk'):
        for ref, parts in found[role]:
            place = _place_of(parts, home)
            if place is False:
                raise LayoutError(
                    'the tarball holds {0} file {1} outside the places an '
                    'image keeps them ({2} or its <hypervisor>{3}/ '
                    'directories); repack it or rename the file'.format(
                        role, ref.name, _shown_dir(home),
                        HYPERVISOR_DIR_SUFFIX))
            places.setdefault(place, {'kernel': [], 'ramdisk': []})
            places[place][role].append(ref)
    return places


def _choose_kernel(places, hypervisor, available):
    """(the place of the kernel to install, the layout's kind), as the
    user's ``hypervisor`` and the tarball's ``places`` allow."""
    if hypervisor in (None, UNIVERSAL):
        if None not in places:
            choices = ', '.join(available)
            if hypervisor is None:
                raise LayoutError(
                    'this image has a kernel for each hypervisor; choose one '
                    'of: {0} (-k/--hypervisor)'.format(choices))
            raise LayoutError(
                'this image has no universal kernel, only hypervisor-'
                'specific ones; choose one of: {0}'.format(choices))
        chosen, kind = None, SINGLE_KERNEL
    elif hypervisor in places:
        chosen, kind = hypervisor, HYPERVISOR_SPECIFIC
    elif not available:
        # One kernel for every hypervisor: it serves whichever was asked for.
        chosen, kind = None, SINGLE_KERNEL
    else:
        choices = available + ([UNIVERSAL] if None in places else [])
        raise LayoutError(
            'this image has no kernel for hypervisor "{0}"; choose one of: '
            '{1}'.format(hypervisor, ', '.join(choices)))
    return chosen, kind


def catalog_fields(members, hypervisors=(), virtualization_type=None):
    """
    What a store's catalog should say of a tarball with these ``members``,
    for its publisher: a dict of ``virtualization_type``, and for
    paravirtual images ``single-kernel`` and ``hypervisors-supported``.
    Every way install may be asked to read the tarball (each hypervisor
    claimed, and the universal kernel when there is one) is tried with
    :func:`analyze`, so a tarball that install would refuse is refused here,
    before it reaches a store.  ``hypervisors`` are the publisher's claims;
    without them, the tarball's own kernel directories are claimed.
    """
    virt = _normalize_virtualization_type(virtualization_type)
    claimed = [six.text_type(name).strip().lower() for name in hypervisors
               if six.text_type(name).strip()]
    # As an HVM image every tarball with one disk image is readable; this
    # also lists its kernel directories.
    available = list(analyze(members, virtualization_type=HVM)
                     .available_hypervisors)
    if virt == HVM:
        return {'virtualization_type': HVM, 'hypervisors-supported': claimed}
    try:
        universal = analyze(members, UNIVERSAL, virt)
    except LayoutError:
        if not available:
            raise
        universal = None
    if universal is not None and universal.kind == HVM:
        return {'virtualization_type': HVM, 'hypervisors-supported': claimed}
    for name in available:
        analyze(members, name, virt)
    if universal is None:
        missing = [name for name in claimed if name not in available]
        if missing:
            raise LayoutError(
                'the tarball has no kernel for hypervisor {0} (it has '
                'kernels for: {1}); claim only those, or add a {2}{3}/ '
                'directory'.format(', '.join(missing), ', '.join(available),
                                   missing[0], HYPERVISOR_DIR_SUFFIX))
    return {'virtualization_type': 'paravirtual',
            'single-kernel': universal is not None,
            'hypervisors-supported': claimed or available}


def provisional_role(member, hypervisor=None, virtualization_type=None):
    """
    The role a member will have, judged from its own name, for streaming a
    tarball in one pass before its whole member list is known: 'machine',
    'kernel', 'ramdisk' or None.  For a valid tarball this agrees with
    :func:`analyze`, which the caller must still run on the whole list
    (before registering anything) to catch invalid ones.
    """
    for ref, parts in _regular_files([member]):
        role = _role_of(parts[-1])
        if role in (None, 'machine'):
            return role
        if _normalize_virtualization_type(virtualization_type) == HVM:
            return None
        where = parts[-2].lower() if len(parts) > 1 else ''
        if where.endswith(HYPERVISOR_DIR_SUFFIX) and \
                len(where) > len(HYPERVISOR_DIR_SUFFIX):
            chosen = where[:-len(HYPERVISOR_DIR_SUFFIX)]
            return role if chosen == (hypervisor or '').lower() else None
        return role
    return None


def _normalize_virtualization_type(value):
    if value is None:
        return None
    value = six.text_type(value).strip().lower()
    if not value:
        return None
    if value not in VIRTUALIZATION_TYPES:
        raise LayoutError(
            'unknown virtualization type "{0}"; expected {1}'.format(
                value, ' or '.join(VIRTUALIZATION_TYPES)))
    return value


def _place_of(parts, home):
    """None beside the disk image, a hypervisor name, or False (misplaced)."""
    where = parts[:-1]
    if where == home:
        return None
    if len(where) == len(home) + 1 and where[:-1] == home:
        subdir = where[-1].lower()
        if subdir.endswith(HYPERVISOR_DIR_SUFFIX) and \
                len(subdir) > len(HYPERVISOR_DIR_SUFFIX):
            return subdir[:-len(HYPERVISOR_DIR_SUFFIX)]
    return False


def _pick(place, home, hypervisor):
    where = _shown_dir(home + ((hypervisor + HYPERVISOR_DIR_SUFFIX,)
                               if hypervisor else ()))
    for role in ('kernel', 'ramdisk'):
        if len(place[role]) > 1:
            raise LayoutError(
                'the tarball holds several candidate {0}s in {1} ({2}); it '
                'must hold one'.format(role, where, _names(place[role])))
    kernel = place['kernel'][0] if place['kernel'] else None
    ramdisk = place['ramdisk'][0] if place['ramdisk'] else None
    if ramdisk is not None and kernel is None:
        raise LayoutError(
            'the tarball holds a ramdisk ({0}) but no kernel in {1}; a '
            'kernel\'s file name must contain "vmlinu"'.format(
                ramdisk.name, where))
    return kernel, ramdisk


# -------------------------------------------------------------------- names

def tarball_stem(filename):
    """A tarball's file name without its .tgz or .tar.gz."""
    for suffix in TARBALL_SUFFIXES:
        if filename.lower().endswith(suffix):
            return filename[:-len(suffix)]
    return filename


def image_name_base(tarball_filename):
    """
    "eustore-<tarball name>" as euca2ools 3.0 named installed images: the
    file name (of a path or URL) without .tgz/.tar.gz, dots turned into
    underscores (and any other character EC2 refuses in a name as well).
    """
    name = six.text_type(tarball_filename)
    if '://' in name:
        name = unquote_path(urlparse.urlparse(name).path)
    name = tarball_stem(posixpath.basename(name.replace('\\', '/')))
    name = _NAME_CHARS_RE.sub('_', name.replace('.', '_')).strip()
    if not name:
        raise LayoutError('cannot name images after "{0}": it has no file '
                          'name; give the tarball\'s URL or file name'
                          .format(tarball_filename))
    return 'eustore-' + name


def entry_name_base(name):
    """
    The base of the names an image installed from a store entry called
    ``name`` is registered under: the entry's name, with what EC2 does not
    take in a name (":" of simplestreams' product:version names, say)
    turned into underscores.
    """
    base = _ENTRY_NAME_CHARS_RE.sub('_', six.text_type(name)).strip()
    if len(base) < 3:
        raise LayoutError('cannot name images after "{0}": give a name with '
                          '-p'.format(name))
    return base


def registered_names(base, pad=None, suffix=''):
    """
    {'machine': ..., 'kernel': ..., 'ramdisk': ...}: the names install
    registers, from a base name (``image_name_base`` of the tarball, or the
    user's --prefix).  ``pad`` (the caller's random hex, for --pad-name) goes
    after the base so that an image's three names still sort together:
    eustore-NAME-PAD, eustore-NAME-PAD-kernel, eustore-NAME-PAD-ramdisk;
    ``suffix`` ends the machine image's name (eustore-NAME-PAD-ebs).
    """
    if pad is not None:
        pad = six.text_type(pad)
        if not _PAD_RE.match(pad):
            raise LayoutError('name padding "{0}" must be letters and '
                              'digits only'.format(pad))
        pad_suffix = '-' + pad
    else:
        pad_suffix = ''
    room = MAX_NAME_LENGTH - len(pad_suffix) - max(len('-ramdisk'),
                                                   len(suffix))
    base = base[:room]
    machine = base + pad_suffix
    return {'machine': machine + suffix,
            'kernel': machine + '-kernel',
            'ramdisk': machine + '-ramdisk'}
