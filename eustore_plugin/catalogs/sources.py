# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The image stores that exist today, seen as eustore catalogs: simplestreams
mirrors and virt-builder indexes become :class:`~.catalog.Catalog`
objects, so that listing, filters, ``--json``, check-store and install
treat every kind of store alike.  No I/O here (store/reader.py fetches the
documents; simplestreams.py and virtbuilder.py parse them).

What an image of each kind is (docs/formats.md, "simplestreams" and
"virt-builder indexes"):

- simplestreams: one version of a product, named by its ``pubname`` (else
  ``<product>:<version>``); its ``uec.tar.gz`` or ``tar.gz`` item, if any,
  is the tarball (a UEC tarball: disk image, kernel, ramdisk), and its
  first of DISK_FTYPES (qcow2; ``uefi1.img`` boots UEFI) the whole-disk
  image, installed
  as HVM when there is no tarball or when HVM is asked for.  Listings show
  each product's newest version unless all are asked for.
- virt-builder: one section, named by its id; the file is a whole-disk
  image (raw or qcow2, usually xz-compressed), installed as HVM; ``size``
  is the disk's virtual size.  Hidden sections are not listed (they still
  install by name).
"""

from __future__ import absolute_import

import collections

import six

from eustore_plugin.catalogs.catalog import Catalog, CatalogImage, DiskImage
from eustore_plugin.catalogs.simplestreams import newest_versions
from eustore_plugin.catalogs.sourceformat import version_key

EUSTORE = 'eustore'
SIMPLESTREAMS = 'simplestreams'
VIRT_BUILDER = 'virt-builder'

# Item types that are UEC-style tarballs, best first; and disk images.
TARBALL_FTYPES = ('uec.tar.gz', 'tar.gz')
DISK_FTYPES = ('disk1.img', 'disk.img', 'disk-kvm.img', 'uefi1.img')

SIMPLESTREAMS_VERBOSE = ('release', 'serial', 'label', 'files')
VIRT_BUILDER_VERBOSE = ('revision', 'osinfo', 'format', 'notes')


def _text(value):
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, six.binary_type):
        value = value.decode('utf-8', 'replace')
    return six.text_type(value)


def _first(items, ftypes):
    by_type = {}
    for item in items.values():
        by_type.setdefault(item.ftype, item)
    for ftype in ftypes:
        if ftype in by_type:
            return by_type[ftype]
    return None


def simplestreams_image(version, mirror_url):
    """A CatalogImage for one simplestreams version (None if it has
    nothing to install)."""
    attributes = version.attributes
    tarball = _first(version.items, TARBALL_FTYPES)
    disk = _first(version.items, DISK_FTYPES)
    if tarball is None and disk is None:
        return None
    name = version.pubname or u'{0}:{1}'.format(
        version.product, version.version)
    release = _text(attributes.get('release'))
    entry = collections.OrderedDict([
        ('name', name),
        ('os', _text(attributes.get('os'))),
        ('architecture', version.architecture),
        ('version', _text(attributes.get('version')) or release),
        ('description', _text(attributes.get('release_title')) or
         _text(attributes.get('label')) or version.product),
        ('release', release),
        ('serial', version.version),
        ('label', _text(attributes.get('label'))),
        ('product', version.product),
        ('files', ','.join(sorted(item.ftype for item in
                                  version.items.values()
                                  if item.ftype))),
    ])
    if tarball is not None:
        entry.update([('url', tarball.url), ('size', tarball.size),
                      ('sha256', tarball.sha256), ('md5', tarball.md5)])
    else:
        entry['virtualization_type'] = 'hvm'
    image = CatalogImage(dict((key, value) for key, value in entry.items()
                              if value is not None), mirror_url)
    image.source_format = SIMPLESTREAMS
    image.verbose_columns = SIMPLESTREAMS_VERBOSE
    if disk is not None:
        # uefi1.img: Ubuntu's image for UEFI firmware.
        image.disk = DiskImage(disk.url, disk.size, sha256=disk.sha256,
                               md5=disk.md5, disk_format='qcow2',
                               boot_mode='uefi' if disk.ftype == 'uefi1.img'
                               else None)
    return image


def simplestreams_catalog(versions, url, mirror_url, warnings=(),
                          all_versions=False):
    """The Catalog of a mirror's versions: each product's newest one, or
    all of them, newest first within a product."""
    chosen = versions if all_versions else newest_versions(versions)
    by_product = collections.OrderedDict()
    for version in sorted(chosen, key=lambda version: version.product):
        by_product.setdefault(version.product, []).append(version)
    images = []
    for product_versions in by_product.values():
        product_versions.sort(key=lambda version: version_key(
            version.version), reverse=True)
        for number, version in enumerate(product_versions):
            image = simplestreams_image(version, mirror_url)
            if image is not None:
                if number == 0:
                    # "-i PRODUCT" installs its newest version.
                    image.aliases = (version.product,)
                images.append(image)
    catalog = Catalog(images, url=url, warnings=list(warnings))
    catalog.source_format = SIMPLESTREAMS
    return catalog


def virt_builder_image(entry):
    """A CatalogImage for one virt-builder section."""
    notes = (entry.notes or u'').strip()
    fields = collections.OrderedDict([
        ('name', entry.section),
        ('os', (entry.osinfo or u'').rstrip('0123456789.') or None),
        ('architecture', entry.architecture),
        ('version', _text(entry.revision)),
        ('description', entry.name),
        ('revision', _text(entry.revision)),
        ('osinfo', entry.osinfo),
        ('format', entry.format),
        ('notes', notes.splitlines()[0] if notes else None),
        ('virtualization_type', 'hvm'),
    ])
    image = CatalogImage(dict((key, value) for key, value in fields.items()
                              if value is not None))
    image.source_format = VIRT_BUILDER
    image.verbose_columns = VIRT_BUILDER_VERBOSE
    image.hidden = bool(entry.hidden)
    image.aliases = tuple(entry.aliases)
    image.disk = DiskImage(entry.url, entry.compressed_size,
                           sha512=entry.sha512,
                           disk_format=entry.format or 'raw',
                           compression=entry.compression,
                           virtual_size=entry.size)
    return image


def virt_builder_catalog(entries, url, warnings=()):
    catalog = Catalog([virt_builder_image(entry) for entry in entries],
                      url=url, warnings=list(warnings))
    catalog.source_format = VIRT_BUILDER
    return catalog
