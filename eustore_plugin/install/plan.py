# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What one install does, decided before any image moves and not changed
after: the options it was given (:class:`InstallOptions`), which of the
store entry's files it installs, the names it registers, where its bundles
go, what it tags them with and the description it registers them with
(:class:`InstallPlan`, made by :func:`build_plan`).  No I/O.
"""

from __future__ import absolute_import

import binascii
import os
import os.path

from eustore_plugin.errors import EustoreError
from eustore_plugin.images.layout import (entry_name_base, image_name_base,
                                          registered_names)


class InstallError(EustoreError):
    """An install cannot go on; the message says why and what to do."""


class InstallOptions(object):
    """
    What the user asked of one install, as plain values (the command's
    options, checked): a store entry (``image_name``) or a local tarball
    (``tarball``), and how to install it: an instance-store bundle, or
    with ``ebs`` an EBS-backed image (install/ebsbacked.py).
    """

    FIELDS = ('image_name', 'tarball', 'description', 'architecture',
              'prefix', 'bucket', 'key_prefix', 'hypervisor', 'directory',
              'kernel', 'ramdisk', 'separate_buckets', 'virtualization_type',
              'pad_name', 'yes', 'upload_concurrency', 'compression_level',
              'acl', 'ebs', 'volume_size', 'volume_type', 'boot_mode',
              'ena', 'imds_support', 'root_device_name')

    def __init__(self, **values):
        unknown = set(values) - set(self.FIELDS)
        if unknown:
            raise TypeError('unknown install options: {0}'.format(
                ', '.join(sorted(unknown))))
        for name in self.FIELDS:
            setattr(self, name, values.get(name))
        self.key_prefix = self.key_prefix or ''

    # What only one target takes, by option (for messages).
    BUNDLE_ONLY = (('bucket', '-b/--bucket'), ('kernel', '--kernel'),
                   ('separate_buckets', '--separate-buckets'),
                   ('acl', '--acl'),
                   ('compression_level', '--compression-level'))
    EBS_ONLY = (('volume_size', '--volume-size'),
                ('volume_type', '--volume-type'),
                ('boot_mode', '--boot-mode'), ('ena', '--no-ena'),
                ('imds_support', '--imds-support'),
                ('root_device_name', '--root-device-name'))

    def check(self):
        """Raise EustoreError naming options that do not go together, or
        a value out of range."""
        if self.upload_concurrency is not None and \
                not 1 <= self.upload_concurrency <= 64:
            raise EustoreError('--upload-concurrency must be 1 to 64')
        if self.ebs:
            given = [option for name, option in self.BUNDLE_ONLY
                     if getattr(self, name)]
            if given:
                raise EustoreError(
                    '{0}: an EBS-backed image (--ebs) has no bundles; leave '
                    'it out'.format(', '.join(given)))
            if self.virtualization_type == 'paravirtual':
                raise EustoreError('--ebs installs HVM images only; leave '
                                   'out --virtualization-type paravirtual')
            most = ROOT_VOLUME_TYPES[self.volume_type or
                                     DEFAULT_VOLUME_TYPE]
            if self.volume_size is not None and \
                    not 1 <= self.volume_size <= most:
                raise EustoreError(
                    '--volume-size is in GiB: at least 1, at most {0} for a '
                    '{1} volume'.format(most, self.volume_type or
                                        DEFAULT_VOLUME_TYPE))
            return
        given = [option for name, option in self.EBS_ONLY
                 if getattr(self, name) is not None]
        if given:
            raise EustoreError('{0} go with --ebs (an EBS-backed image); '
                               'add it, or leave them out'.format(
                                   ', '.join(given)))
        if not self.bucket:
            raise EustoreError('-b/--bucket is required: the bucket to '
                               'upload the bundles to (or --ebs for an '
                               'EBS-backed image, which needs none)')


ROLES = ('kernel', 'ramdisk', 'machine')
# The tags that say where an installed image came from, and what it is
# made of (for clouds, moto among them, that do not say an image's
# manifest location, kernel and ramdisk, or root snapshot themselves).
SOURCE_TAGS = dict((name, 'eustore:' + name) for name in (
    'store', 'format', 'image', 'version', 'checksum'))
BUNDLE_TAGS = dict((name, 'eustore:' + name) for name in (
    'role', 'manifest', 'kernel-id', 'ramdisk-id', 'snapshot'))
# What ends the name of an EBS-backed image (as in AWS's own "-ebs" and
# "-s3" AMI names), so that it and an instance-store copy of the same
# entry can both be installed.
EBS_SUFFIX = '-ebs'
# The volume types an EBS-backed image's root device may have (st1 and
# sc1 cannot boot; io1 and io2 need a figure of IOPS, which is the
# launch's to give), with the most GiB each may have.
ROOT_VOLUME_TYPES = {'gp3': 16384, 'gp2': 16384, 'standard': 1024}
DEFAULT_VOLUME_TYPE = 'gp3'
# EC2 takes descriptions of at most this many characters.
MAX_DESCRIPTION = 255


class InstallPlan(object):
    """What one install does, decided before any I/O and not changed after."""

    def __init__(self, names, architecture, bucket, key_prefix='',
                 description=None, hypervisor=None, virtualization_type=None,
                 kernel_id=None, ramdisk_id=None, separate_buckets=False,
                 tags=None, artifact=None, disk=False, source=None,
                 ebs=False, boot_mode=None):
        self.names = dict(names)
        self.architecture = architecture
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.description = description
        self.hypervisor = hypervisor
        self.virtualization_type = virtualization_type
        self.kernel_id = kernel_id
        self.ramdisk_id = ramdisk_id
        self.separate_buckets = separate_buckets
        # {key: value} of where the image came from (SOURCE_TAGS).
        self.tags = dict(tags or {})
        # What is read from the store: the entry itself (its tarball) or,
        # with ``disk``, its whole-disk image; None for a local tarball.
        self.artifact = artifact
        self.disk = disk
        # Where the image comes from, as --json tells it.
        self.source = dict(source or {})
        # An EBS-backed image (a snapshot, no bundles), and how the store
        # says it boots.
        self.ebs = ebs
        self.boot_mode = boot_mode

    def bucket_for(self, role):
        if self.separate_buckets and role != 'machine':
            return '{0}-{1}'.format(self.bucket, role)
        return self.bucket

    def key(self, name):
        """An object's key in its bucket."""
        return self.key_prefix + name

    def manifest_location(self, role):
        return '{0}/{1}'.format(self.bucket_for(role), self.key(
            self.names[role] + '.manifest.xml'))

    def wants(self, role):
        """Whether a member of ``role`` is bundled (not the user's own)."""
        return role is not None and (role == 'machine' or
                                     not self.kernel_id)

    @property
    def registers_kernels(self):
        """Whether this install registers a kernel and ramdisk of its own
        (a paravirtual image, with none given by --kernel; never an
        EBS-backed one, which boots a whole disk)."""
        return self.virtualization_type != 'hvm' and not self.kernel_id \
            and not self.ebs

    @property
    def registered_roles(self):
        """The roles this install registers, kernel first."""
        return [role for role in ROLES
                if role == 'machine' or self.registers_kernels]

    def summary(self):
        """The names, bucket, key prefix, manifests and source (an
        EBS-backed image's: the names, root device type and source), as
        --json gives them for an install and its dry run alike."""
        roles = self.registered_roles
        if self.ebs:
            return {'names': {'machine': self.names['machine']},
                    'root_device_type': 'ebs', 'source': self.source}
        return {'names': dict((role, self.names[role]) for role in roles),
                'bucket': self.bucket, 'key_prefix': self.key_prefix,
                'manifests': dict((role, self.manifest_location(role))
                                  for role in roles),
                'source': self.source}


def uses_disk(options, image):
    """
    Whether the store entry's whole-disk image is installed: when it has no
    tarball, or HVM or an EBS-backed image is asked for and it has a disk
    image.
    """
    return image.disk is not None and (
        not image.location or options.virtualization_type == 'hvm' or
        bool(options.ebs))


def build_plan(options, image, store_url, local_virtualization_type=None):
    """
    The plan of installing ``image`` (a catalog entry) from the store at
    ``store_url``, or, when ``image`` is None, the local tarball
    ``options.tarball``, whose virtualization type
    ``local_virtualization_type`` read from it when the options do not say.
    """
    if image is not None:
        disk = uses_disk(options, image)
        artifact = image.disk if disk else image
        tarball = artifact.location
        description = options.description or image.description
        architecture = options.architecture or image.architecture
        virt_type = 'hvm' if disk else (options.virtualization_type or
                                        image.virtualization_type)
        tags = source_tags(image, artifact, store_url)
        source = dict((name, tags.get(tag))
                      for name, tag in SOURCE_TAGS.items())
    else:
        artifact, disk = None, False
        tarball = options.tarball
        description = options.description
        architecture = options.architecture
        virt_type = options.virtualization_type or local_virtualization_type
        tags = {}
        source = {'tarball': os.path.abspath(tarball)}
    if not architecture:
        raise InstallError('the catalog does not say which architecture '
                           'the image is for; give it with -a')
    if options.ebs and virt_type == 'paravirtual':
        raise InstallError(paravirtual_refused(
            image.name if image is not None else tarball))
    pad = binascii.hexlify(os.urandom(4)).decode('ascii') \
        if options.pad_name else None
    names = registered_names(options.prefix or name_base(image, tarball),
                             pad, EBS_SUFFIX if options.ebs else '')
    return InstallPlan(
        names, architecture, options.bucket, key_prefix=options.key_prefix,
        description=description, hypervisor=options.hypervisor,
        virtualization_type=virt_type, kernel_id=options.kernel,
        ramdisk_id=options.ramdisk,
        separate_buckets=options.separate_buckets, tags=tags,
        artifact=artifact, disk=disk, source=source, ebs=bool(options.ebs),
        boot_mode=image.boot_mode if image is not None else None)


def paravirtual_refused(what):
    """Why a paravirtual image is not installed EBS-backed, and what to
    do instead."""
    return ('{0} is a paravirtual image (a kernel, a ramdisk and a '
            'filesystem image), and an EBS-backed image boots a whole disk: '
            'install it without --ebs'.format(what))


def source_tags(image, artifact, store_url):
    """
    Where an image comes from, to be told later (describe-installed): the
    store, its kind, the entry's name and version, and the digest of what
    was installed (``artifact``: its tarball or its disk), as tags on every
    image registered.
    """
    checksum = None
    for algorithm in ('sha512', 'sha256', 'md5'):
        if getattr(artifact, algorithm, None):
            checksum = '{0}:{1}'.format(algorithm,
                                        getattr(artifact, algorithm))
            break
    tags = {SOURCE_TAGS['store']: store_url,
            SOURCE_TAGS['format']: image.source_format,
            SOURCE_TAGS['image']: image.name,
            SOURCE_TAGS['version']: image.version,
            SOURCE_TAGS['checksum']: checksum}
    return dict((key, value) for key, value in tags.items() if value)


def name_base(image, tarball):
    """
    What images are named after: the store entry's name; the tarball's
    (``eustore-<tarball name>``, as euca2ools 3.0 and this tool before
    named every install) for -t and for euca2ools 2 entries, whose names
    are checksums.
    """
    if image is None or image.name_checksum is not None:
        return image_name_base(tarball)
    return entry_name_base(image.name)


def describe(plan, role):
    """
    The description an image is registered with: the user's or the
    store's, the role for kernels and ramdisks, and where it came from
    (for clouds without tags), in EC2's 255 characters.
    """
    parts = [plan.description or '']
    if role != 'machine':
        parts.append('({0})'.format(role))
    name = plan.tags.get(SOURCE_TAGS['image'])
    if name:
        parts.append('[eustore: {0}{1} from {2}]'.format(
            name, ' ' + plan.tags[SOURCE_TAGS['version']]
            if plan.tags.get(SOURCE_TAGS['version']) else '',
            plan.tags.get(SOURCE_TAGS['store'], '?')))
    text = ' '.join(part for part in parts if part)
    return text[:MAX_DESCRIPTION] or None
