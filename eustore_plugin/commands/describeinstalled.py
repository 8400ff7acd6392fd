# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import json

from requestbuilder import Arg

from eustore_plugin.commands.base import CloudRequest
from eustore_plugin.install.installed import from_stores, select
from eustore_plugin.output import emit, emit_raw, tsv_line

COLUMNS = ('id', 'name', 'entry', 'version', 'checksum', 'store', 'kernel',
           'ramdisk')
# -v: where the bundle is, and how the image is registered.
VERBOSE_COLUMNS = ('manifest', 'format', 'architecture',
                   'virtualization_type', 'state', 'created',
                   'root_device_type', 'snapshot')


class DescribeInstalled(CloudRequest):
    DESCRIPTION = '''\
        List the images in your cloud that were installed from image
        stores.

        Your own machine images are shown, one tab-separated line each:
        image ID, name, the store's entry it came from (its name in the
        catalog), version, checksum of what was installed, the store's
        URL, and the kernel and ramdisk it boots with.  Where an image came
        from is read from the eustore:* tags eustore-install-image puts on
        it, or, on clouds without tags, from the "[eustore: ...]" end of
        its description.  Images not installed from a store are not
        shown.'''
    ARGS = [Arg('-v', '--verbose', action='store_true', route_to=None,
                help='''also show the manifest location, the kind of store,
                and the architecture, virtualization type, state, creation
                date, root device type (ebs or instance-store) and root
                snapshot of each image'''),
            Arg('--name', dest='names', metavar='PATTERN', action='append',
                route_to=None, help='''only images whose name or store
                entry matches this shell-style pattern (e.g. "centos-*");
                may be given more than once'''),
            Arg('--store', dest='stores', metavar='URL', action='append',
                route_to=None, help='''only images installed from the
                store at this URL; may be given more than once'''),
            Arg('--json', action='store_true', route_to=None,
                help='''print the images as a JSON list of objects, with
                every field -v shows and the description''')]

    def main(self):
        cloud = self.open_cloud(ec2_only=True)
        images = from_stores(cloud.describe_images(owner='self'))
        return select(images, names=self.args.get('names'),
                      stores=self.args.get('stores'))

    def print_result(self, images):
        if self.args.get('json'):
            # ASCII JSON: every control character in it is escaped.
            emit_raw(json.dumps([image.to_dict() for image in images],
                                indent=2, sort_keys=True, ensure_ascii=True))
            return
        columns = COLUMNS + (VERBOSE_COLUMNS if self.args.get('verbose')
                             else ())
        for image in images:
            emit(tsv_line(getattr(image, column) or '' for column in columns),
                 tabs=True)
