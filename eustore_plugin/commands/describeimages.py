# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import json

from requestbuilder import Arg

from eustore_plugin.output import emit, emit_raw, tsv_line, warn
from eustore_plugin.commands.base import CatalogRequest


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
            # ASCII JSON: every control character in it is escaped.
            emit_raw(json.dumps([image.to_dict() for image in images],
                                indent=2, sort_keys=True, ensure_ascii=True))
            return
        columns = COLUMNS + (VERBOSE_COLUMNS if self.args.get('verbose')
                             else ())
        for image in images:
            emit(format_line(image, columns), tabs=True)


def format_line(image, columns):
    """One image as tab-separated cells: a tab or newline in a field is
    escaped (\\t, \\n), so it cannot start another cell or line."""
    return tsv_line(','.join(image.hypervisors) if column == 'hypervisors'
                    else getattr(image, column) or '' for column in columns)
