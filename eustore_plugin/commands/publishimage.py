# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import collections
import os.path
import time

from requestbuilder import Arg
from requestbuilder.exceptions import ArgumentError

from eustore_plugin.catalogs.catalog import (catalog_with_image, store_key,
                                             tarball_keys)
from eustore_plugin.commands.base import PublisherRequest
from eustore_plugin.dryrun import DryRun
from eustore_plugin.images.layout import (TARBALL_SUFFIXES, catalog_fields,
                                          tarball_stem)
from eustore_plugin.output import emit, warn
from eustore_plugin.publish.preflight import (check_catalog, check_signer,
                                              check_store, purge_steps,
                                              write_step)
from eustore_plugin.publish.tarball import inspect_tarball


class PublishImage(PublisherRequest):
    DESCRIPTION = '''\
        Publish an image tarball in an image store.

        The tarball is checked the way eustore-install-image will read it
        (one disk image; kernels and ramdisks where install finds them),
        uploaded to the store's bucket with a public-read ACL under a name
        made from its SHA-256, and added to the catalog with its size and
        checksums, or put in place of the image of the same name.  The
        catalog is changed under the store's lock with a conditional write,
        so concurrent publishers lose nothing, and it names the tarball only
        once the tarball is there.  With --sign-key the catalog is signed
        (catalog.asc beside it).'''
    ARGS = [Arg('-t', '--tarball', metavar='FILE', required=True,
                route_to=None, help='the image tarball (tar.gz) to publish'),
            Arg('-i', '--image-name', dest='image_name', metavar='NAME',
                route_to=None, help='''name of the image in the catalog
                (default: the tarball's file name without .tgz/.tar.gz)'''),
            Arg('-s', '--description', required=True, route_to=None,
                help='description of the image'),
            Arg('-a', '--architecture', metavar='ARCH', required=True,
                route_to=None, help='architecture: i386, x86_64, ...'),
            Arg('--os', metavar='OS', required=True, route_to=None,
                help='operating system (centos, debian, ...)'),
            Arg('--image-version', metavar='VERSION', route_to=None,
                help="the image's version"),
            Arg('--hypervisor', dest='hypervisors', metavar='HYPERVISOR',
                action='append', route_to=None, help='''a hypervisor the
                image supports; may be given more than once (default: those
                the tarball has kernel directories for)'''),
            Arg('--virtualization-type', choices=('paravirtual', 'hvm'),
                route_to=None, help='''how the image boots (default:
                paravirtual when the tarball has a kernel, else hvm)'''),
            Arg('--date', metavar='YYYYMMDDhhmmss', route_to=None,
                help='build date of the image (default: now, UTC)'),
            Arg('--recipe', route_to=None,
                help='name of the recipe the image was built with'),
            Arg('--stamp', route_to=None, help='build stamp of the image'),
            Arg('--contact', route_to=None,
                help='whom to ask about the image'),
            Arg('--dry-run', action='store_true', route_to=None,
                help='''check all that needs nothing uploaded (the tarball,
                the signing key, the bucket, the lock, the catalog), say
                what would be done, and stop; exit 1 listing every problem
                found'''),
            Arg('--json', action='store_true', route_to=None,
                help='''print the result as a JSON object: the catalog
                entry, whether it replaced one, and the store''')]

    def configure(self):
        PublisherRequest.configure(self)
        tarball = self.args['tarball']
        if not os.path.isfile(tarball):
            raise ArgumentError('-t/--tarball: no such file: {0}'
                                .format(tarball))
        if not tarball.lower().endswith(TARBALL_SUFFIXES):
            raise ArgumentError('-t/--tarball: {0} must be a .tgz or '
                                '.tar.gz file'.format(tarball))

    def main(self):
        if self.args.get('dry_run'):
            return self.dry_run()
        facts, fields = self.inspect()
        signer = self.signer()
        if signer is not None:
            signer.sign(b'')  # a key that cannot sign fails before uploading
        store = self.open_store()
        entry = self.catalog_entry(facts, fields, store.tarball_url(facts))
        store.ensure_bucket()
        uploaded = store.upload_tarball(facts)
        try:
            document, replaced = self.change_catalog(
                store, lambda old, now, valid_for: catalog_with_image(
                    old, entry, now, valid_for))
        except BaseException:
            if uploaded:
                self.remove_upload(store, store.tarball_name(facts))
            raise
        deleted = []
        if replaced and replaced.get('url') != entry['url']:
            deleted = self.remove_tarballs(store, document,
                                           [replaced.get('url')])
        self.purge(store)
        return {'entry': entry, 'replaced': replaced is not None,
                'store': str(store), 'uploaded': uploaded,
                'deleted': deleted}

    def print_result(self, result):
        if self.printed_as_report(result):
            return
        entry = result['entry']
        emit(u'{0} image {1}: {2}{3} ({4} bytes, sha256 {5})'.format(
            'Replaced' if result['replaced'] else 'Published', entry['name'],
            result['store'], store_key(entry['url']), entry['size'],
            entry['sha256']))

    # ------------------------------------------------------------------

    def inspect(self):
        """The tarball read once and checked as install reads it: its
        facts and the catalog fields its layout gives."""
        facts = inspect_tarball(self.args['tarball'])
        fields = catalog_fields(facts.members,
                                hypervisors=self.args.get('hypervisors') or (),
                                virtualization_type=self.args.get(
                                    'virtualization_type'))
        return facts, fields

    def dry_run(self):
        """Every check of a publish that uploads nothing, then what it
        would do (see publish/preflight.py)."""
        run = DryRun()
        inspected = run.attempt('tarball', self.inspect, detail=lambda
                                inspected: u'{0}: {1} bytes, sha256 {2}, {3}'
                                .format(self.args['tarball'],
                                        inspected[0].size,
                                        inspected[0].sha256,
                                        inspected[1]['virtualization_type']))
        store, exists = check_store(run, self.open_store,
                                    self.args.get('break_lock'))
        signer = self.signer()
        if store is None:
            check_signer(run, signer)
            return run
        entry = None
        if inspected is not None:
            facts, fields = inspected
            name = store.tarball_name(facts)
            entry = self.catalog_entry(facts, fields, store.tarball_url(facts))
            present = store.cloud.head_object(
                store.bucket, store.key(name)) if exists else None
            run.would(u'Would upload {0} to {1}{2} ({3} bytes, public-read)'
                      .format(self.args['tarball'], store, name, facts.size)
                      if not present else
                      u'Would not upload {0}: {1}{2} holds it already'
                      .format(self.args['tarball'], store, name))
        # Without an entry (the tarball failed), the catalog is still read
        # and parsed.
        probe = entry or {'name': self.args.get('image_name') or
                          self.default_name()}
        changed = check_catalog(
            run, store, exists, lambda old: catalog_with_image(old, probe),
            signer)
        if changed is not None and entry is not None:
            document, replaced = changed
            if replaced is None:
                run.passed('entry', u'{0} would be added'.format(
                    entry['name']))
                run.would(u'Would add image {0} to the catalog'.format(
                    entry['name']))
            else:
                run.passed('entry', u'{0} would replace the entry of that '
                           u'name'.format(entry['name']))
                run.would(u'Would replace image {0} in the catalog (was '
                          u'{1})'.format(entry['name'], replaced.get('url')))
            run.would(write_step(signer))
            old = store.removable_tarball(
                replaced.get('url'), tarball_keys(document)) \
                if replaced is not None and \
                replaced.get('url') != entry['url'] else None
            if old:
                run.would(u'Would delete the old tarball {0}{1}'.format(
                    store, old))
            run.add_summary(dict(entry=entry, replaced=replaced is not None,
                                 store=str(store)))
        elif changed is not None:
            run.would(write_step(signer))
        for step in purge_steps(store, self.args.get('purge')):
            run.would(step)
        return run

    def catalog_entry(self, facts, fields, url):
        name = self.args.get('image_name') or self.default_name()
        date = self.args.get('date') or \
            time.strftime('%Y%m%d%H%M%S', time.gmtime())
        entry = collections.OrderedDict([
            ('name', name),
            ('description', self.args['description']),
            ('version', self.args.get('image_version')),
            ('architecture', self.args['architecture']),
            ('os', self.args['os']),
            ('url', url),
            ('date', date),
            ('recipe', self.args.get('recipe')),
            ('stamp', self.args.get('stamp')),
            ('contact', self.args.get('contact')),
            ('hypervisors-supported',
             fields.get('hypervisors-supported') or None),
            ('virtualization_type', fields['virtualization_type'])])
        if 'single-kernel' in fields:
            # As euca2ools 2.x catalogs spelt it, which its clients read.
            entry['single-kernel'] = 'True' if fields['single-kernel'] \
                else 'False'
        entry.update([('size', facts.size), ('sha256', facts.sha256),
                      ('md5', facts.md5)])
        return collections.OrderedDict((key, value) for key, value
                                       in entry.items() if value is not None)

    def default_name(self):
        return tarball_stem(os.path.basename(self.args['tarball']))

    @staticmethod
    def remove_upload(store, key_name):
        """Take back the tarball this run uploaded, unless the store's
        catalog names it after all (another publisher's, written after
        it had read ours)."""
        try:
            document, _ = store.read_catalog()
            if document is not None and key_name in tarball_keys(document):
                return
            store.delete(key_name)
        except Exception as err:  # the original failure is what is reported
            warn('could not remove the uploaded tarball {0}{1} ({2})'.format(
                store, key_name, err))
