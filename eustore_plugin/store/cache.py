# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The last good catalog of each store, kept on the user's disk.

With it, listing a store costs one conditional GET (``If-None-Match``, or
``If-Modified-Since`` from a store that gives no ETag, answered "304 Not
Modified" while the catalog is unchanged), and a store that cannot be
reached still lists, from the copy, with a notice that it may be out of
date.  Only catalogs that passed the user's signature policy are kept,
together with their signatures, so a copy is checked again, the same way,
whenever it is used; and with what the signed text said of its age (its
serial, "updated" time or template revisions: trust.py), so that an older
one served later is refused.

Entries live under ``$XDG_CACHE_HOME/eustore`` (``~/.cache/eustore``), one
JSON file per store URL, written to a temporary name and renamed so that
concurrent commands never read half a file.
"""

from __future__ import absolute_import

import base64
import hashlib
import io
import json
import os
import os.path
import tempfile
import time

import six


class CachedCatalog(object):
    """
    A catalog as fetched: its URL, bytes, signature and validators, and
    ``freshness``: what its signed text says of its age (a dict, empty when
    it is not signed; None for a copy kept before that was kept).
    """

    def __init__(self, url, body, signature=None, etag=None,
                 last_modified=None, fetched_at=None, freshness=None):
        self.url = url
        self.body = body
        self.signature = signature
        self.etag = etag
        self.last_modified = last_modified
        self.fetched_at = fetched_at if fetched_at is not None else time.time()
        self.freshness = freshness

    def validators(self):
        """Headers that ask the store to answer 304 if nothing changed."""
        # The ETag alone when there is one.  A date has one-second
        # resolution, and some servers (moto's S3 among them) answer 304 to
        # an If-Modified-Since that holds even when If-None-Match does not,
        # so a catalog replaced within the second of the copy would be
        # taken as unchanged while its new signature is fetched afresh.
        if self.etag:
            return {'If-None-Match': self.etag}
        if self.last_modified:
            return {'If-Modified-Since': self.last_modified}
        return {}

    @property
    def fetched_text(self):
        return time.strftime('%Y-%m-%d %H:%M:%S UTC',
                             time.gmtime(self.fetched_at))


def _encode(data):
    return None if data is None else base64.b64encode(data).decode('ascii')


def _decode(text):
    return None if text is None else base64.b64decode(text.encode('ascii'))


class CatalogCache(object):
    def __init__(self, directory=None):
        if directory is None:
            base = os.environ.get('XDG_CACHE_HOME') or \
                os.path.join(os.path.expanduser('~'), '.cache')
            directory = os.path.join(base, 'eustore')
        self.directory = directory

    def _path(self, store_url):
        digest = hashlib.sha256(store_url.encode('utf-8')).hexdigest()
        return os.path.join(self.directory, digest[:32] + '.json')

    def load(self, store_url):
        """A store's cached catalog, or None (also for a damaged file)."""
        try:
            with io.open(self._path(store_url), 'r', encoding='utf-8') as src:
                data = json.load(src)
            if data.get('store') != store_url:
                return None
            freshness = data.get('freshness')
            return CachedCatalog(data['url'], _decode(data['body']),
                                 _decode(data.get('signature')),
                                 data.get('etag'), data.get('last_modified'),
                                 data.get('fetched_at'),
                                 freshness if isinstance(freshness, dict)
                                 else None)
        except (IOError, OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, store_url, entry):
        """Keep ``entry``; a cache that cannot be written is only skipped."""
        data = {'store': store_url, 'url': entry.url,
                'body': _encode(entry.body),
                'signature': _encode(entry.signature), 'etag': entry.etag,
                'last_modified': entry.last_modified,
                'fetched_at': entry.fetched_at,
                'freshness': entry.freshness}
        temp = None
        try:
            if not os.path.isdir(self.directory):
                os.makedirs(self.directory, 0o700)
            fd, temp = tempfile.mkstemp(dir=self.directory, suffix='.tmp')
            with io.open(fd, 'w', encoding='utf-8') as out:
                out.write(six.text_type(json.dumps(data, sort_keys=True)))
            os.rename(temp, self._path(store_url))
        except (IOError, OSError):
            if temp and os.path.exists(temp):
                os.remove(temp)
            return False
        return True
