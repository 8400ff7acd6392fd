# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

from requestbuilder import Arg

from eustore_plugin.catalogs.catalog import catalog_without_image, tarball_keys
from eustore_plugin.commands.base import PublisherRequest
from eustore_plugin.dryrun import DryRun
from eustore_plugin.output import emit
from eustore_plugin.publish.preflight import (check_catalog, check_store,
                                              purge_steps, write_step)


class WithdrawImage(PublisherRequest):
    DESCRIPTION = '''\
        Withdraw an image from an image store.

        The image's entry leaves the catalog first (under the store's lock,
        re-signed with --sign-key), and only then is its tarball deleted,
        unless another entry still names it (or it is not one of the
        store's tarballs), so the catalog never names a missing tarball.'''
    ARGS = [Arg('-i', '--image-name', dest='image_name', metavar='NAME',
                required=True, route_to=None,
                help='name of the image to withdraw'),
            Arg('--dry-run', action='store_true', route_to=None,
                help='''check that the image is in the catalog and that the
                store can be changed (the bucket, the lock, the signing
                key), say what would be removed, and stop; exit 1 listing
                every problem found'''),
            Arg('--json', action='store_true', route_to=None,
                help='''print the result as a JSON object: the image, its
                tarball, and whether the tarball was deleted''')]

    def main(self):
        if self.args.get('dry_run'):
            return self.dry_run()
        store = self.open_store()
        name = self.args['image_name']
        document, removed = self.change_catalog(
            store, lambda old, now, valid_for: catalog_without_image(
                old, name, now, valid_for))
        deleted = self.remove_tarballs(store, document, [removed.get('url')])
        self.purge(store)
        return {'name': name, 'url': removed.get('url'), 'store': str(store),
                'tarball_deleted': bool(deleted),
                'tarball': deleted[0] if deleted else None}

    def print_result(self, result):
        if self.printed_as_report(result):
            return
        emit(u'Withdrew image {0}'.format(result['name']))

    def dry_run(self):
        """The entry there, the store changeable, and which tarball
        would go (see publish/preflight.py)."""
        run = DryRun()
        name = self.args['image_name']
        store, exists = check_store(run, self.open_store,
                                    self.args.get('break_lock'), create=False)
        if not exists:
            return run
        signer = self.signer()
        changed = check_catalog(
            run, store, exists, lambda old: catalog_without_image(old, name),
            signer)
        if changed is None:
            return run
        document, removed = changed
        url = removed.get('url')
        run.passed('entry', u'{0} is in the catalog{1}'.format(
            name, u' ({0})'.format(url) if url else ''))
        run.would(u'Would remove image {0} from the catalog'.format(name))
        run.would(write_step(signer))
        key = store.removable_tarball(url, tarball_keys(document))
        if key:
            run.would(u'Would delete the tarball {0}{1}'.format(store, key))
        elif url:
            run.would(u'Would keep the tarball {0}: {1}'.format(
                url, 'another entry names it' if store.removable_tarball(
                    url, ()) else 'it is not one of the store\'s tarballs'))
        run.add_summary(dict(name=name, url=url, store=str(store),
                             tarball=key, tarball_deleted=bool(key)))
        for step in purge_steps(store, self.args.get('purge')):
            run.would(step)
        return run
