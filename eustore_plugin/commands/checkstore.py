# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import json

from requestbuilder import Arg
from requestbuilder.exceptions import ClientError
import six

from eustore_plugin.commands.base import CatalogRequest
from eustore_plugin.errors import EustoreError
from eustore_plugin.output import emit, emit_raw, tsv_line
from eustore_plugin.store.download import DownloadStream, Hashes, compare
from eustore_plugin.store.service import presence_problems
from eustore_plugin.store.urlpolicy import UrlRefused


class StoreCheckFailed(ClientError):
    pass


class CheckStore(CatalogRequest):
    DESCRIPTION = '''\
        Check an image store the way its users see it.

        The catalog is read from the store URL (through its cache, if that
        is the URL given) and its signature checked as
        eustore-describe-images checks it; then every image's files (its
        tarball, its whole-disk image) are downloaded and their sizes and
        checksums compared with the catalog's, without keeping them.  One
        line per image says OK or what is wrong; the exit status is 1 if
        anything is.'''
    ARGS = [Arg('--quick', action='store_true', route_to=None,
                help='''only check that each tarball is there and of the
                right size (ask for its first byte instead of reading it
                all)'''),
            Arg('--json', action='store_true', route_to=None,
                help='''print the outcome as a JSON object: who signed the
                catalog, and each image OK or FAILED with its problems''')]

    def main(self):
        catalog = self.fetch_catalog()
        results = []
        for image in catalog.images:
            results.append((image, self.check_image(image)))
        return {'results': results, 'signed_by': catalog.signed_by}

    def print_result(self, result):
        if self.args.get('json'):
            self.print_json(result)
            return
        if result['signed_by']:
            emit(tsv_line(['OK', 'catalog', 'signed by {0}'.format(
                result['signed_by'])]), tabs=True)
        failed = 0
        for image, problems in result['results']:
            if problems:
                failed += 1
                emit(tsv_line(['FAILED', image.name, '; '.join(problems)]),
                     tabs=True)
            else:
                emit(tsv_line(['OK', image.name]), tabs=True)
        if failed:
            raise StoreCheckFailed('{0} of {1} images failed the check'
                                   .format(failed, len(result['results'])))

    def print_json(self, result):
        images = [{'name': image.name,
                   'status': 'FAILED' if problems else 'OK',
                   'problems': list(problems)}
                  for image, problems in result['results']]
        failed = len([image for image in images if image['problems']])
        emit_raw(json.dumps({'store': self.service.endpoint,
                             'signed_by': result['signed_by'],
                             'images': images, 'failed': failed},
                            indent=2, sort_keys=True, ensure_ascii=True))
        if failed:
            raise StoreCheckFailed('{0} of {1} images failed the check'
                                   .format(failed, len(images)))

    # ------------------------------------------------------------------

    def check_image(self, image):
        """What is wrong with an image's files (its tarball, its whole-disk
        image), as a list of problems."""
        files = [artifact for artifact in (image if image.location else None,
                                           image.disk) if artifact]
        if not files:
            return ['the catalog gives no url']
        problems = []
        for artifact in files:
            problems.extend(self.check_file(image, artifact))
        return problems

    def check_file(self, image, artifact):
        try:
            self.check_location(image, artifact.location)
        except UrlRefused as err:
            return [six.text_type(err)]
        if self.args.get('quick'):
            return self.check_presence(artifact)
        stream = DownloadStream(
            self.service.open_url, artifact.location,
            expected_size=artifact.size, pace=self.pace,
            limit=artifact.size_limit,
            hashes=Hashes(sha512=artifact.sha512 is not None))
        try:
            for _ in stream.chunks():
                pass
            checks, failures = compare(stream.result(), artifact)
        except EustoreError as err:
            return [six.text_type(err)]
        finally:
            stream.close()
        if not checks:
            return ['the catalog gives no size or checksum to check']
        return failures

    def check_presence(self, image):
        return presence_problems(self.service, image)
