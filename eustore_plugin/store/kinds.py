# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What kind of store a URL names, told from its first document: an eustore
catalog, a simplestreams index or products file, or a virt-builder index.
No I/O: the caller fetches the candidates in order and asks here.
"""

from __future__ import absolute_import

import email.utils

import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.catalogs import simplestreams, virtbuilder
from eustore_plugin.catalogs.catalog import CatalogError, load_json
from eustore_plugin.store import openpgp

# The 2.x/3.0 clients fetched "<store>catalog"; the seed names it catalog.json.
CATALOG_NAMES = ('catalog', 'catalog.json')
EUSTORE_CATALOG = 'eustore'
SIMPLESTREAMS_INDEX = 'simplestreams-index'
SIMPLESTREAMS_PRODUCTS = 'simplestreams-products'
VIRT_BUILDER_INDEX = 'virt-builder'
KIND_NAMES = {EUSTORE_CATALOG: 'an eustore catalog',
              SIMPLESTREAMS_INDEX: 'a simplestreams index',
              SIMPLESTREAMS_PRODUCTS: 'a simplestreams products file',
              VIRT_BUILDER_INDEX: 'a virt-builder index', None: 'unknown'}
# Where each kind keeps its first document, in the order they are tried.
STORE_DOCUMENTS = ('catalog', 'catalog.json', 'streams/v1/index.sjson',
                   'streams/v1/index.json', 'index.asc', 'index')
_DOCUMENT_NAMES = ('index', 'index.asc')
_DOCUMENT_SUFFIXES = ('.json', '.sjson')


def names_a_document(url):
    """Whether a store URL names its first document rather than a
    directory holding one."""
    last = urlparse.urlparse(url).path.rstrip('/').rsplit('/', 1)[-1]
    return url.lower().endswith(_DOCUMENT_SUFFIXES) or \
        (last in _DOCUMENT_NAMES and not url.endswith('/'))


def store_candidates(store_url):
    """
    The URLs to try for a store's first document, in order; ``store_url``
    as service.normalize_store_url made it: a directory's ends in "/", any
    other names the document.
    """
    if not store_url.endswith('/'):
        return [store_url]
    return [urlparse.urljoin(store_url, name) for name in STORE_DOCUMENTS]


def document_kind(url, body):
    """What kind of store's document ``body`` (bytes) is, or None."""
    text = body
    if openpgp.is_clearsigned(body):
        try:
            text = openpgp.clearsigned_content_unverified(body, 'document')
        except openpgp.SignatureError:
            return None
    if virtbuilder.looks_like_index(text):
        return VIRT_BUILDER_INDEX
    try:
        data = load_json(text, 'the document')
    except CatalogError:
        return None
    if isinstance(data, dict) and isinstance(data.get('images'), list):
        return EUSTORE_CATALOG
    kind = simplestreams.document_kind(data)
    return {'index': SIMPLESTREAMS_INDEX,
            'products': SIMPLESTREAMS_PRODUCTS}.get(kind)


def parse_rfc2822(text):
    """A simplestreams "updated" time (RFC 2822) as seconds, or None."""
    if not isinstance(text, six.string_types):
        return None
    parsed = email.utils.parsedate_tz(text)
    return email.utils.mktime_tz(parsed) if parsed else None
