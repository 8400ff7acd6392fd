# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import json

from requestbuilder import Arg

from eustore_plugin.commands.base import CatalogRequest
from eustore_plugin.output import emit, emit_raw, tsv_line, warn

# Columns of the historical output; -v adds what the kind of store has
# (CatalogImage.verbose_columns: for an eustore catalog date, stamp,
# recipe and contact).
COLUMNS = ('name', 'os', 'architecture', 'version', 'hypervisors',
           'description')


class DescribeImages(CatalogRequest):
    DESCRIPTION = '''\
        List the images of an image store.

        The store may be an eustore catalog, a simplestreams mirror or a
        virt-builder index.  Each image is shown on one tab-separated line:
        name, operating system, architecture, version, supported
        hypervisors and description; -v adds what the store has besides
        (an eustore catalog's build date, stamp, recipe and contact; a
        simplestreams release, serial, label and files; a virt-builder
        template's revision, osinfo, format and notes).  A simplestreams
        mirror shows the newest version of each product unless
        --all-versions.  Filters narrow the list; each may be given more
        than once to accept any of several values.'''
    ARGS = [Arg('-v', '--verbose', action='store_true', route_to=None,
                help='''also show what the store has besides (date, stamp,
                recipe and contact of an eustore catalog)'''),
            Arg('--all-versions', action='store_true', route_to=None,
                help='''every version of each simplestreams product, not
                only the newest'''),
            Arg('--name', dest='names', metavar='PATTERN', action='append',
                route_to=None, help='''only images whose name matches this
                shell-style pattern (e.g. "centos-*")'''),
            Arg('--os', dest='oses', metavar='OS', action='append',
                route_to=None, help='only images of this operating system'),
            Arg('-a', '--architecture', dest='architectures', metavar='ARCH',
                action='append', route_to=None,
                help='only images of this architecture (i386, x86_64, ...)'),
            Arg('--json', action='store_true', route_to=None,
                help='''print the images as a JSON list of objects (every
                catalog field, plus the resolved tarball location)''')]

    def main(self):
        catalog = self.fetch_catalog()
        for message in catalog.warnings:
            warn(message)
        images = catalog.select(names=self.args.get('names'),
                                oses=self.args.get('oses'),
                                architectures=self.args.get('architectures'))
        if not self.args.get('all_versions'):
            images = newest_of_each_product(images)
        return images

    def print_result(self, images):
        if self.args.get('json'):
            # ASCII JSON: every control character in it is escaped.
            emit_raw(json.dumps([image.to_dict() for image in images],
                                indent=2, sort_keys=True, ensure_ascii=True))
            return
        for image in images:
            emit(format_line(image, self.args.get('verbose')), tabs=True)


def format_line(image, verbose=False):
    """One image as tab-separated cells: a tab or newline in a field is
    escaped (\\t, \\n), so it cannot start another cell or line."""
    cells = [','.join(image.hypervisors) if column == 'hypervisors'
             else getattr(image, column) for column in COLUMNS]
    if verbose:
        cells.extend(image.verbose_values())
    return tsv_line(cell or '' for cell in cells)


def newest_of_each_product(images):
    """Images with no product, and the first (newest) of each product."""
    seen, kept = set(), []
    for image in images:
        product = image.extra.get('product')
        if product is not None:
            if product in seen:
                continue
            seen.add(product)
        kept.append(image)
    return kept
