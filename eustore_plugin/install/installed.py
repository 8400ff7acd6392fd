# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The images in a cloud that came from image stores, read back from what
eustore-install-image left on them (installer.py): the eustore:* tags
(SOURCE_TAGS: store, format, entry, version, checksum; BUNDLE_TAGS: role,
manifest, kernel and ramdisk, root snapshot) and, for clouds without tags,
the marker that ends the description, ``[eustore: NAME VERSION from URL]``
(after ``(kernel)`` or ``(ramdisk)`` for those).  No I/O here: the input
is DescribeImages' items, as requestbuilder parses them.

What the cloud reports itself wins over the tags where both say it: the
kernel and ramdisk an image uses (kernelId, ramdiskId), its manifest
(imageLocation, of an instance-store image), its root device type and
snapshot (rootDeviceType, and the root device's blockDeviceMapping), and a
kernel's or ramdisk's type (imageType; moto calls every image a machine
image, so "machine" from the cloud settles nothing).  A cloud that gives a
root device type other than "ebs" or "instance-store" (moto says
"standard", and shows a mapping of its own making) is not believed about
the root device at all.
"""

from __future__ import absolute_import

import fnmatch
import re

import six

from eustore_plugin.install.plan import BUNDLE_TAGS, SOURCE_TAGS

ROLES = ('machine', 'kernel', 'ramdisk')
ROOT_DEVICE_TYPES = ('ebs', 'instance-store')
# The end of an installed image's description (installer.describe).
_MARKER_RE = re.compile(
    r'(?:\((?P<role>kernel|ramdisk)\) )?'
    r'\[eustore: (?P<image>\S+)(?: (?P<version>.+?))? from (?P<store>\S+)\]'
    r'\s*\Z')


def _text(value):
    """A string field of DescribeImages' answer, or None (an empty
    element parses as None, a nested one as a dict)."""
    if isinstance(value, six.binary_type):
        value = value.decode('utf-8', 'replace')
    if isinstance(value, six.string_types) and value.strip():
        return value.strip()
    return None


def tags_of(item):
    """{key: value} of a DescribeImages item's tagSet."""
    tags = {}
    for tag in item.get('tagSet') or []:
        if isinstance(tag, dict) and _text(tag.get('key')):
            tags[_text(tag.get('key'))] = _text(tag.get('value'))
    return tags


def reported_root(item):
    """
    (root device type, root snapshot id) as the cloud reports them, or
    (None, None) when it gives no root device type it could mean.
    """
    device_type = _text(item.get('rootDeviceType'))
    if device_type not in ROOT_DEVICE_TYPES:
        return None, None
    root = _text(item.get('rootDeviceName'))
    for mapping in item.get('blockDeviceMapping') or []:
        ebs = mapping.get('ebs') if isinstance(mapping, dict) else None
        if isinstance(ebs, dict) and root and \
                _text(mapping.get('deviceName')) == root:
            return device_type, _text(ebs.get('snapshotId'))
    return device_type, None


def parse_marker(description):
    """The description's ``[eustore: ...]`` marker as a dict (image,
    version, store, role), or None."""
    match = _MARKER_RE.search(_text(description) or '')
    if match is None:
        return None
    found = match.groupdict()
    found['role'] = found['role'] or 'machine'
    return found


class InstalledImage(object):
    """
    One image as the cloud shows it, with where it came from.
    ``provenance`` is "tags" or "description" (what said it came from a
    store), or None for an image that did not (see ``from_store``).
    """

    def __init__(self, item):
        self.item = item
        tags = tags_of(item)
        marker = parse_marker(item.get('description'))
        self.id = _text(item.get('imageId'))
        self.name = _text(item.get('name'))
        self.description = _text(item.get('description'))
        self.owner = _text(item.get('imageOwnerId'))
        self.architecture = _text(item.get('architecture'))
        self.virtualization_type = _text(item.get('virtualizationType'))
        self.state = _text(item.get('imageState'))
        self.created = _text(item.get('creationDate'))
        self.image_type = _text(item.get('imageType'))
        if tags.get(SOURCE_TAGS['image']):
            self.provenance = 'tags'
            source = dict((name, tags.get(key))
                          for name, key in SOURCE_TAGS.items())
            role = tags.get(BUNDLE_TAGS['role'])
        elif marker:
            self.provenance = 'description'
            source = dict(marker, format=None, checksum=None)
            role = marker['role']
        else:
            self.provenance = None
            source, role = {}, None
        self.entry = source.get('image')
        self.version = source.get('version')
        self.checksum = source.get('checksum')
        self.store = source.get('store')
        self.format = source.get('format')
        if self.image_type in ('kernel', 'ramdisk'):
            role = self.image_type
        self.role = role if role in ROLES else 'machine'
        self.kernel = _text(item.get('kernelId')) or \
            tags.get(BUNDLE_TAGS['kernel-id'])
        self.ramdisk = _text(item.get('ramdiskId')) or \
            tags.get(BUNDLE_TAGS['ramdisk-id'])
        # Whether the cloud itself says which kernel the image boots.
        self.kernel_reported = bool(_text(item.get('kernelId')) or
                                    _text(item.get('ramdiskId')))
        self.root_device_type, self.snapshot = reported_root(item)
        if self.root_device_type is None:
            self.snapshot = tags.get(BUNDLE_TAGS['snapshot'])
            self.root_device_type = 'ebs' if self.snapshot else None
        elif self.root_device_type == 'ebs':
            self.snapshot = self.snapshot or \
                tags.get(BUNDLE_TAGS['snapshot'])
        # An EBS-backed image's imageLocation is "account/name", no
        # manifest's.
        self.manifest = None if self.root_device_type == 'ebs' else (
            _text(item.get('imageLocation')) or
            tags.get(BUNDLE_TAGS['manifest']))
        if self.root_device_type is None and self.manifest:
            self.root_device_type = 'instance-store'

    @property
    def from_store(self):
        return self.provenance is not None

    def uses(self, image_id):
        """Whether this image boots with the kernel or ramdisk given."""
        return image_id is not None and image_id in (self.kernel,
                                                     self.ramdisk)

    def label(self):
        """``ami-... (name)``, for messages."""
        return u'{0} ({1})'.format(self.id, self.name) if self.name \
            else self.id

    def to_dict(self):
        return dict((name, getattr(self, name)) for name in (
            'id', 'name', 'entry', 'version', 'checksum', 'store', 'format',
            'kernel', 'ramdisk', 'manifest', 'architecture',
            'virtualization_type', 'state', 'created', 'owner',
            'description', 'provenance', 'root_device_type', 'snapshot'))


def from_stores(items):
    """The machine images among DescribeImages ``items`` that came from an
    image store, by name then id."""
    images = [InstalledImage(item) for item in items]
    return sorted((image for image in images
                   if image.from_store and image.role == 'machine'),
                  key=lambda image: (image.name or '', image.id or ''))


def select(images, names=None, stores=None):
    """
    The images whose registered name or store entry matches one of the
    shell-style ``names`` patterns, and that came from one of ``stores``
    (a trailing slash aside), when these are given.
    """
    def matches_name(image):
        return any(fnmatch.fnmatchcase(value, pattern)
                   for pattern in names
                   for value in (image.name, image.entry) if value)

    def matches_store(image):
        return (image.store or '').rstrip('/') in \
            set(store.rstrip('/') for store in stores)
    return [image for image in images
            if (not names or matches_name(image)) and
            (not stores or matches_store(image))]
