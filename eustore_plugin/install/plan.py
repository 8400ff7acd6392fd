# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What one install does, decided before any I/O and not changed after: the
names it registers, where its bundles go, what it tags them with, and the
description it registers them with.
"""

from __future__ import absolute_import

ROLES = ('kernel', 'ramdisk', 'machine')
# The tags that say where an installed image came from, and what it is
# made of (for clouds, moto among them, that do not say an image's
# manifest location, kernel and ramdisk, or root snapshot themselves).
SOURCE_TAGS = dict((name, 'eustore:' + name) for name in (
    'store', 'format', 'image', 'version', 'checksum'))
BUNDLE_TAGS = dict((name, 'eustore:' + name) for name in (
    'role', 'manifest', 'kernel-id', 'ramdisk-id', 'snapshot'))
# EC2 takes descriptions of at most this many characters.
MAX_DESCRIPTION = 255


class InstallPlan(object):
    """What one install does, decided before any I/O and not changed after."""

    def __init__(self, names, architecture, bucket, key_prefix='',
                 description=None, hypervisor=None, virtualization_type=None,
                 kernel_id=None, ramdisk_id=None, separate_buckets=False,
                 tags=None):
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
        (a paravirtual image, with none given by --kernel)."""
        return self.virtualization_type != 'hvm' and not self.kernel_id

    @property
    def registered_roles(self):
        """The roles this install registers, kernel first."""
        return [role for role in ROLES
                if role == 'machine' or self.registers_kernels]


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
