# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import json

from requestbuilder import Arg

from eustore_plugin.output import emit, warn
from eustore_plugin.store import CatalogRequest


# Columns of the historical output, then those that -v adds.
COLUMNS = ('name', 'os', 'architecture', 'version', 'hypervisors',
           'description')
VERBOSE_COLUMNS = ('date', 'stamp', 'recipe', 'contact')


class DescribeImages(CatalogRequest):
    DESCRIPTION = '''\
        List the images of an image store.

        Each image is shown on one tab-separated line: name, operating
        system, architecture, version, supported hypervisors and
        description; -v adds the build date, stamp, recipe and contact.
        Filters narrow the list; each may be given more than once to
        accept any of several values.'''
    ARGS = [Arg('-v', '--verbose', action='store_true', route_to=None,
                help='also show date, stamp, recipe and contact'),
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
        return catalog.select(names=self.args.get('names'),
                              oses=self.args.get('oses'),
                              architectures=self.args.get('architectures'))

    def print_result(self, images):
        if self.args.get('json'):
            emit(json.dumps([image.to_dict() for image in images], indent=2,
                            sort_keys=True))
            return
        columns = COLUMNS + (VERBOSE_COLUMNS if self.args.get('verbose')
                             else ())
        for image in images:
            emit(format_line(image, columns))


def format_line(image, columns):
    cells = []
    for column in columns:
        if column == 'hypervisors':
            value = ','.join(image.hypervisors)
        else:
            value = getattr(image, column) or ''
        # A tab or newline in a hand-edited field must not break the line.
        cells.append(' '.join(value.split()))
    return '\t'.join(cells)
