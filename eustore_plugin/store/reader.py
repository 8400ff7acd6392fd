# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Reading a store's catalog: its first document found and fetched against
the user's cached copy, its kind told (kinds.py), its signature
and freshness judged by the user's trust policy (trust.py), and parsed
into one :class:`~eustore_plugin.catalogs.catalog.Catalog` whatever the
kind.  Each document is kept in the cache only once every document of the
catalog passed: a refused one leaves the copies as they were.
"""

from __future__ import absolute_import

import logging

import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.catalogs import simplestreams, virtbuilder
from eustore_plugin.catalogs.catalog import Catalog, CatalogError, load_json
from eustore_plugin.catalogs.sources import (simplestreams_catalog,
                                             virt_builder_catalog)
from eustore_plugin.limits import DOCUMENT, SIGNATURE
from eustore_plugin.output import warn
from eustore_plugin.store import openpgp
from eustore_plugin.store.cache import CachedCatalog, CatalogCache
from eustore_plugin.store.download import DEFAULT_PACE
from eustore_plugin.store.kinds import (CATALOG_NAMES, EUSTORE_CATALOG,
                                        KIND_NAMES, SIMPLESTREAMS_INDEX,
                                        SIMPLESTREAMS_PRODUCTS,
                                        VIRT_BUILDER_INDEX, document_kind,
                                        store_candidates)
from eustore_plugin.store.service import (StoreError, read_document,
                                          with_store_choice)
from eustore_plugin.store.trust import (SIGNATURE_SUFFIX, TrustPolicy,
                                        catalog_freshness, revisions_freshness,
                                        updated_freshness)

LOG = logging.getLogger(__name__)

# How a store says it has no such file: S3 answers 403 rather than 404 to
# anonymous readers of a bucket they may not list.
MISSING_STATUSES = (403, 404)


class CatalogReader(object):
    """
    Reads a store's catalog the way the user's configuration says: with a
    conditional GET against the user's cached copy, from that copy (with a
    notice) when the store cannot be reached or stalls, checked against the
    OpenPGP keys the user trusts, and refused when older than the copy or
    expired.  The store may be of any of the kinds sources.py knows; what
    it is is found from what is there (:func:`document_kind`).
    """

    def __init__(self, service, config, trusted_keys=None,
                 user_agent=None, pace=DEFAULT_PACE, cache=None):
        self.service = service
        self.config = config
        self.trust = TrustPolicy(config, trusted_keys)
        self.user_agent = user_agent
        self.pace = pace
        store_url = service.endpoint
        local = urlparse.urlparse(store_url).scheme.lower() == 'file'
        self.cache = None if local else (cache or CatalogCache())
        self._to_keep = []

    def read(self):
        """Read, verify and parse the store's catalog; raises StoreError."""
        store_url = self.service.endpoint
        try:
            fetched, cached = self._fetch_cached(store_url, store_candidates(
                store_url), 'catalog')
        except StoreError as err:
            raise with_store_choice(err, store_url)
        kind = document_kind(fetched.url, fetched.body)
        LOG.debug('%s is %s', fetched.url, KIND_NAMES[kind])
        if kind is None and (fetched.url.rsplit('/', 1)[-1] in
                             CATALOG_NAMES or fetched.url.endswith('.json')):
            # Where an eustore catalog is kept: say what is wrong with it
            # as one.
            kind = EUSTORE_CATALOG
        if kind == EUSTORE_CATALOG:
            catalog = self._eustore_catalog(fetched, cached)
        elif kind == VIRT_BUILDER_INDEX:
            catalog = self._virt_builder_catalog(fetched, cached)
        elif kind in (SIMPLESTREAMS_INDEX, SIMPLESTREAMS_PRODUCTS):
            catalog = self._simplestreams_catalog(fetched, cached, kind)
        else:
            raise with_store_choice(StoreError(
                'the document at {0} is neither an image store catalog, a '
                'simplestreams index nor a virt-builder index; check the '
                'store URL'.format(fetched.url)), store_url)
        self._keep(store_url, fetched, cached)
        for key, document in self._to_keep:
            if document.freshness is None:
                document.freshness = {}  # not signed: it says nothing
            self.cache.save(key, document)
        return catalog

    # Fetching ---------------------------------------------------------

    def _fetch_cached(self, key, candidates, what):
        """
        The first of ``candidates`` the store has, fetched against the copy
        cached under ``key``, or that copy when the store cannot be reached:
        (fetched, cached).
        """
        cached = self.cache.load(key) if self.cache else None
        try:
            return self._fetch(candidates, cached, what), cached
        except StoreError as err:
            if cached is None or (err.status_code is not None and
                                  err.status_code < 500):
                raise
            warn(u'{0}; using its {1} as fetched at {2}, which may be out '
                 u'of date'.format(err, what, cached.fetched_text))
            return cached, cached

    def _keep(self, key, fetched, cached):
        """Keep ``fetched`` under ``key`` once the whole catalog passed."""
        if self.cache is not None and fetched is not cached:
            self._to_keep.append((key, fetched))

    def _get(self, url, headers=None, limit=DOCUMENT):
        headers = dict(headers or {})
        if self.user_agent:
            headers['User-Agent'] = self.user_agent
        return read_document(self.service, url, headers, limit, self.pace)

    def _fetch(self, candidates, cached, what):
        tried = []
        for url in candidates:
            validators = cached.validators() if cached and \
                cached.url == url else {}
            try:
                body, response = self._get(url, validators)
            except StoreError as err:
                if err.status_code == 304:
                    if not validators:
                        raise StoreError(
                            'the store answered "304 Not Modified" for {0} '
                            'to a request that had no copy to compare; it '
                            'is misconfigured, tell its operator'.format(url))
                    LOG.debug('%s is unchanged since %s (304)', url,
                              cached.fetched_text)
                    # As fetched now (its signature may still be new).
                    return CachedCatalog(cached.url, cached.body, None,
                                         etag=cached.etag,
                                         last_modified=cached.last_modified)
                if err.status_code in MISSING_STATUSES:
                    tried.append('{0} ({1})'.format(url, err.status_code))
                    continue
                raise
            return CachedCatalog(
                url, body, None, etag=response.headers.get('ETag'),
                last_modified=response.headers.get('Last-Modified'))
        hint = 'check the store URL (-U or EUSTORE_URL)'
        if any(attempt.endswith('(403)') for attempt in tried):
            hint += ("; 403 is also how S3 refuses anonymous readers: a "
                     "store's files must be public-read")
        raise StoreError('the image store has no {0}: nothing at {1}; {2}'
                         .format(what, ' or '.join(tried), hint), 404)

    def _with_signature(self, fetched):
        """A fetched eustore catalog with its detached signature."""
        try:
            signature = self._get(fetched.url + SIGNATURE_SUFFIX,
                                  limit=SIGNATURE)[0]
        except StoreError as err:
            if err.status_code not in MISSING_STATUSES:
                raise
            signature = None
        return CachedCatalog(fetched.url, fetched.body, signature,
                             etag=fetched.etag,
                             last_modified=fetched.last_modified,
                             fetched_at=fetched.fetched_at)

    # The three kinds --------------------------------------------------

    def _eustore_catalog(self, fetched, cached):
        if fetched is not cached:  # offline, the cached copy has its own
            fetched.signature = self._with_signature(fetched).signature
        # The signature first: a tampered catalog is reported as such, not
        # as whatever parsing it would then say.
        signed_by = self.trust.check_signature(fetched)
        try:
            catalog = Catalog.parse(fetched.body, fetched.url)
        except CatalogError as err:
            raise StoreError(six.text_type(err))
        catalog.signed_by = signed_by
        if signed_by:
            self.trust.check_expiry(catalog)
            self.trust.check_not_older(
                'catalog', fetched, catalog_freshness(catalog), cached,
                lambda copy: catalog_freshness(Catalog.parse(copy.body,
                                                             copy.url)))
        return catalog

    def _virt_builder_catalog(self, fetched, cached):
        text, signer = self.trust.clearsigned(fetched, 'index')
        try:
            entries, warnings = virtbuilder.parse_index(text, fetched.url)
        except virtbuilder.VirtBuilderError as err:
            raise StoreError(six.text_type(err))
        if signer:
            self.trust.check_not_older(
                'index', fetched, revisions_freshness(entries), cached,
                lambda copy: revisions_freshness(virtbuilder.parse_index(
                    _signed_text(copy, 'index'), copy.url)[0]))
        catalog = virt_builder_catalog(entries, fetched.url, warnings)
        catalog.signed_by = signer
        return catalog

    def _simplestreams_catalog(self, fetched, cached, kind):
        text, signer = self.trust.clearsigned(fetched, 'index')
        mirror = simplestreams.mirror_root(fetched.url)
        if kind == SIMPLESTREAMS_PRODUCTS:
            documents = [(fetched, text, signer, cached)]
            warnings = []
        else:
            data = self._json(text, fetched.url)
            if signer:
                self._check_updated('index', fetched, data, cached)
            try:
                refs, warnings = simplestreams.parse_index(data, fetched.url)
            except simplestreams.SimplestreamsError as err:
                raise StoreError(six.text_type(err))
            mirror = refs[0].mirror_url if refs else mirror
            documents = [self._products(ref, signed=signer is not None)
                         for ref in refs]
        versions = []
        signers = set()
        for document, products_text, products_signer, previous in \
                documents:
            products = self._json(products_text, document.url)
            if products_signer:
                self._check_updated('products file', document, products,
                                    previous)
            signers.add(products_signer)
            try:
                found, more = simplestreams.parse_products(
                    products, document.url, mirror)
            except simplestreams.SimplestreamsError as err:
                raise StoreError(six.text_type(err))
            versions.extend(found)
            warnings.extend(more)
        catalog = simplestreams_catalog(versions, fetched.url, mirror,
                                        warnings, all_versions=True)
        # Signed only if the index and every products file are.
        catalog.signed_by = signer if signers == set([signer]) else None
        return catalog

    def _products(self, ref, signed):
        """One products file an index names, fetched, cached and checked:
        (fetched, text, signer, cached)."""
        candidates = [ref.url]
        if ref.url.endswith('.json'):
            # A signed mirror serves each products file signed as well.
            sjson = ref.url[:-len('.json')] + '.sjson'
            candidates = [sjson, ref.url] if signed else [ref.url]
        fetched, cached = self._fetch_cached(ref.url, candidates,
                                             'products file')
        text, signer = self.trust.clearsigned(fetched, 'products file')
        self._keep(ref.url, fetched, cached)
        return fetched, text, signer, cached

    def _check_updated(self, noun, fetched, data, cached):
        """A signed simplestreams document is no older than the copy."""
        self.trust.check_not_older(
            noun, fetched, updated_freshness(data), cached,
            lambda copy: updated_freshness(self._json(
                _signed_text(copy, noun), copy.url)))

    @staticmethod
    def _json(text, url):
        try:
            return load_json(text, 'the document at {0}'.format(url))
        except CatalogError as err:
            raise StoreError(six.text_type(err))


def _signed_text(copy, noun):
    """The text of a cached copy, clearsigned or not (it was verified when
    it was kept)."""
    if openpgp.is_clearsigned(copy.body):
        return openpgp.clearsigned_content_unverified(copy.body, noun)
    return copy.body
