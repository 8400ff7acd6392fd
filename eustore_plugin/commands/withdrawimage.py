# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

from requestbuilder import Arg

from eustore_plugin.catalog import catalog_without_image
from eustore_plugin.commands.base import PublisherRequest
from eustore_plugin.output import emit


class WithdrawImage(PublisherRequest):
    DESCRIPTION = '''\
        Withdraw an image from an image store.

        The image's entry leaves the catalog first (under the store's lock,
        re-signed with --sign-key), and only then is its tarball deleted,
        unless another entry still names it (or it is not one of the
        store's tarballs), so the catalog never names a missing tarball.'''
    ARGS = [Arg('-i', '--image-name', dest='image_name', metavar='NAME',
                required=True, route_to=None,
                help='name of the image to withdraw')]

    def main(self):
        store = self.open_store()
        name = self.args['image_name']
        document, removed = self.change_catalog(
            store, lambda old, now, valid_for: catalog_without_image(
                old, name, now, valid_for))
        self.remove_tarballs(store, document, [removed.get('url')])
        self.purge(store)
        return {'name': name, 'url': removed.get('url')}

    def print_result(self, result):
        emit(u'Withdrew image {0}'.format(result['name']))
