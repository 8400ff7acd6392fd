# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The image store as a requestbuilder service, and reading its catalog.

A store is a plain HTTP(S) location (usually a public S3/Walrus bucket behind
a cache) holding a catalog and tarballs; air-gapped sites use ``file://`` URLs
or plain directories.  Its URL comes, like every euca2ools endpoint, from the
command line (``-U``), then the environment (``EUSTORE_URL``), then the
region's ``eustore-url`` config option, and finally the historical default.

Everything a store sends is attacker input (docs/threat-model.md): what its
catalog may make the tools read is the URL policy's (urlpolicy.py), every
redirect included; a catalog has a size limit, before and after any
Content-Encoding; every read has a progress deadline; and a signed catalog
must be signed by a key the user trusts, no older than the last one this
user accepted from the store, and not expired.
"""

from __future__ import absolute_import

import email.utils
import glob
import io
import logging
import os
import os.path
import stat
import time

from requestbuilder import Arg
from requestbuilder.auth import BaseAuth
from requestbuilder.exceptions import ClientError, ServerError
from requestbuilder.service import BaseService
import requests.adapters
import six
import six.moves.urllib_parse as urlparse
from six.moves.urllib.request import pathname2url, url2pathname

from eustore_plugin import openpgp, simplestreams, virtbuilder
from eustore_plugin.catalog import Catalog, CatalogError, load_json
from eustore_plugin.catalogcache import CachedCatalog, CatalogCache
from eustore_plugin.download import (CHUNK_SIZE, DEFAULT_STALL_TIMEOUT,
                                     StallWatch)
from eustore_plugin.errors import EustoreError
from eustore_plugin.output import warn
from eustore_plugin.sources import simplestreams_catalog, virt_builder_catalog
from eustore_plugin.urlpolicy import UrlPolicy, UrlRefused
from eustore_plugin.values import as_count


LOG = logging.getLogger('eustore.store')

DEFAULT_STORE_URL = 'http://emis.eucalyptus.com/'
# The 2.x/3.0 clients fetched "<store>catalog"; the seed names it catalog.json.
CATALOG_NAMES = ('catalog', 'catalog.json')
# A catalog's detached OpenPGP signature is its URL plus this.
SIGNATURE_SUFFIX = '.asc'
# How a store says it has no such file: S3 answers 403 rather than 404 to
# anonymous readers of a bucket they may not list.
MISSING_STATUSES = (403, 404)
# A catalog (or index) larger than this is not one: thousands of entries
# fit in a few MiB.  Counted on the wire and after any Content-Encoding.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_SIGNATURE_BYTES = 256 * 1024


class StoreError(EustoreError):
    """The store could not be read; the message says where and why."""


def normalize_store_url(url):
    """
    A store URL that names a directory ends in "/" so that relative names
    resolve inside it; a plain local path becomes a file:// URL.  A URL that
    names a .json file is the catalog itself and is left alone.
    """
    scheme = urlparse.urlparse(url).scheme.lower()
    if scheme not in ('http', 'https', 'file'):
        url = 'file://' + pathname2url(os.path.abspath(
            os.path.expanduser(url)))
    if names_a_document(url) or url.endswith('/'):
        return url
    return url + '/'


def store_option(config, name):
    """A store option of the region, else of the [global] section."""
    value = config.get_region_option(name)
    return value if value is not None else config.get_global_option(name)


class _PolicyAdapter(requests.adapters.HTTPAdapter):
    """
    Every request to a store, redirects included (requestbuilder follows
    those itself), goes through here first: the service's URL policy says
    whether it may be sent at all.
    """

    def __init__(self, service):
        requests.adapters.HTTPAdapter.__init__(self, max_retries=0)
        self._service = service

    def send(self, request, **kwargs):
        policy = self._service.policy
        if policy is not None:
            policy.check(request.url, 'to read')
        return requests.adapters.HTTPAdapter.send(self, request, **kwargs)


class EustoreService(BaseService):
    NAME = 'eustore'
    DESCRIPTION = 'Image store'
    URL_ENVVAR = 'EUSTORE_URL'
    REGION_ENVVAR = ('EUCA_DEFAULT_REGION', 'AWS_DEFAULT_REGION')
    ARGS = [Arg('-U', '--url', metavar='URL', help='''image store URL: a
                directory holding a catalog, a .json catalog, or a local
                path (default: $EUSTORE_URL, the "eustore-url" region
                option, or {0})'''.format(DEFAULT_STORE_URL))]

    policy = None  # the store's UrlPolicy, once its URL is known

    def configure(self):
        # Unlike a private cloud's self-signed endpoints, a store hands out
        # images to boot: verify TLS unless the user's config says not to.
        verify = self.config.get_global_option('eustore-verify-tls')
        if self.config.convert_to_bool(verify, default=True):
            self.session_args.setdefault(
                'verify', os.getenv('REQUESTS_CA_BUNDLE') or True)
        else:
            self.session_args.setdefault('verify', False)
        BaseService.configure(self)
        adapter = _PolicyAdapter(self)
        self.session.mount('http://', adapter)
        self.session.mount('https://', adapter)
        self.policy = UrlPolicy(self.endpoint)

    def validate_config(self):
        self.endpoint = normalize_store_url(self.endpoint or
                                            DEFAULT_STORE_URL)

    def open_url(self, url, headers=None):
        """
        GET a URL of this store (http, https or file) as a streamed
        response-like object with ``status_code``, ``headers`` and
        ``iter_content``; raises StoreError naming the URL, including when
        the URL policy refuses it.
        """
        try:
            self.policy.check(url, 'to read')
        except UrlRefused as err:
            raise StoreError(six.text_type(err))
        if urlparse.urlparse(url).scheme.lower() == 'file':
            return _LocalFileResponse(url)
        # A store's files live at URLs of their own (image URLs may even name
        # another host), so requestbuilder is pointed at each in turn.
        endpoint, self.endpoint = self.endpoint, url
        try:
            return self.send_request(method='GET', headers=headers or {})
        except UrlRefused as err:  # a redirect the policy refused
            raise StoreError('{0} (redirected from {1})'.format(err, url))
        except ServerError as err:
            raise StoreError('the image store answered {0} {1} for {2}'
                             .format(err.status_code, err.reason or '',
                                     url).replace('  ', ' '),
                             err.status_code)
        except ClientError as err:
            raise StoreError(_describe_connection_error(url, err))
        finally:
            self.endpoint = endpoint


def _describe_connection_error(url, err):
    reason = six.text_type(err)
    if 'CERTIFICATE_VERIFY_FAILED' in reason or 'SSLError' in reason:
        return ('TLS verification failed for the image store at {0}; if it '
                'uses a private CA, point REQUESTS_CA_BUNDLE at that CA\'s '
                'certificate ({1})'.format(url, reason))
    return 'cannot reach the image store at {0} ({1})'.format(url, reason)


class _LocalFileResponse(object):
    """
    A file:// URL read the way a streamed HTTP response would be.  Only a
    regular file: opening a FIFO would wait for a writer forever, and a
    device is not an image.
    """

    status_code = 200
    reason = 'OK'

    def __init__(self, url):
        self.url = url
        path = url2pathname(urlparse.urlparse(url).path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0))
        except (IOError, OSError) as err:
            raise StoreError('cannot read {0} ({1})'.format(
                url, err.strerror or err),
                404 if not os.path.lexists(path) else None)
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            os.close(fd)
            raise StoreError('cannot read {0}: it is not a regular file'
                             .format(url))
        self._file = io.open(fd, 'rb')
        self.headers = {'Content-Length': str(status.st_size)}

    def iter_content(self, chunk_size=65536):
        with self._file:
            for chunk in iter(lambda: self._file.read(chunk_size), b''):
                yield chunk

    def close(self):
        self._file.close()


def read_document(service, url, headers=None, limit=MAX_DOCUMENT_BYTES,
                  stall_timeout=DEFAULT_STALL_TIMEOUT):
    """
    A whole small file of the store (a catalog, an index, a signature) as
    (bytes, response), read with a size limit on the wire and after
    decoding, and a progress deadline; raises StoreError.
    """
    response = service.open_url(url, headers=headers)
    length = _header_int(response, 'Content-Length')
    if length is not None and length > limit:
        response.close()
        raise StoreError('the store sends {0} bytes for {1}, more than the '
                         '{2} bytes a catalog may have; check the store URL'
                         .format(length, url, limit))
    watch = StallWatch(stall_timeout)
    watch.watch(response)
    pieces, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            watch.tick()
            size += len(chunk)
            wire = _wire_bytes(response)
            if size > limit or (wire is not None and wire > limit):
                raise StoreError(
                    'the document at {0} is larger than the {1} bytes a '
                    'catalog may have (after decoding); check the store URL'
                    .format(url, limit))
            pieces.append(chunk)
        if watch.fired:
            raise StoreError('the store at {0} sent nothing for {1:.0f} '
                             'seconds'.format(url, stall_timeout))
    except (IOError, OSError, requests.exceptions.RequestException) as err:
        if watch.fired:
            raise StoreError('the store at {0} sent nothing for {1:.0f} '
                             'seconds'.format(url, stall_timeout))
        raise StoreError('reading {0} failed ({1})'.format(url, err))
    finally:
        watch.stop()
        response.close()
    return b''.join(pieces), response


def _header_int(response, name):
    return as_count((getattr(response, 'headers', None) or {}).get(name))


def _wire_bytes(response):
    """Bytes read off the connection so far (before decoding), if known."""
    tell = getattr(getattr(response, 'raw', None), 'tell', None)
    try:
        return tell() if tell is not None else None
    except (IOError, OSError, ValueError):
        return None


class AnonymousStoreAuth(BaseAuth):
    """
    Stores are public, so nothing is signed; -I and -S are still accepted,
    as by every euca2ools command, so that shared scripts and aliases work.
    """

    ARGS = [Arg('-I', '--access-key-id', dest='key_id', metavar='KEY_ID',
                route_to=None, help="accepted for compatibility with other "
                "euca2ools commands; stores are read anonymously"),
            Arg('-S', '--secret-key', dest='secret_key', metavar='KEY',
                route_to=None, help='accepted for compatibility (see -I)')]


# ---------------------------------------------------------------- catalogs

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
                 user_agent=None, stall_timeout=DEFAULT_STALL_TIMEOUT,
                 cache=None):
        self.service = service
        self.config = config
        self.trusted_keys = trusted_keys
        self.user_agent = user_agent
        self.stall_timeout = stall_timeout
        store_url = service.endpoint
        local = urlparse.urlparse(store_url).scheme.lower() == 'file'
        self.cache = None if local else (cache or CatalogCache())

    def read(self):
        """Read, verify and parse the store's catalog; raises StoreError."""
        store_url = self.service.endpoint
        fetched, cached = self._fetch_cached(store_url, store_candidates(
            store_url), 'catalog')
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
            catalog = self._virt_builder_catalog(fetched)
        elif kind in (SIMPLESTREAMS_INDEX, SIMPLESTREAMS_PRODUCTS):
            catalog = self._simplestreams_catalog(fetched, cached, kind)
        else:
            raise StoreError(
                'the document at {0} is neither an image store catalog, a '
                'simplestreams index nor a virt-builder index; check the '
                'store URL'.format(fetched.url))
        self._keep(store_url, fetched, cached)
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
        if self.cache is not None and fetched is not cached:
            self.cache.save(key, fetched)

    def _get(self, url, headers=None, limit=MAX_DOCUMENT_BYTES):
        headers = dict(headers or {})
        if self.user_agent:
            headers['User-Agent'] = self.user_agent
        return read_document(self.service, url, headers, limit,
                             self.stall_timeout)

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
                                  limit=MAX_SIGNATURE_BYTES)[0]
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
        signed_by = self.check_signature(fetched)
        try:
            catalog = Catalog.parse(fetched.body, fetched.url)
        except CatalogError as err:
            raise StoreError(six.text_type(err))
        catalog.signed_by = signed_by
        if signed_by:
            self.check_freshness(catalog, cached if cached is not fetched
                                 else None)
        return catalog

    def _clearsigned(self, fetched, noun):
        """The text of a document that may be clearsigned, and its signer
        (None: unsigned, or no trusted key), by the same policy."""
        keys = self.trusted_key_files()
        self._log_policy(fetched, noun, keys)
        if not openpgp.is_clearsigned(fetched.body):
            self._unsigned(fetched, noun)
            return fetched.body, None
        if not keys:
            self._no_keys(fetched, noun)
            try:
                return openpgp.clearsigned_content_unverified(
                    fetched.body, noun), None
            except openpgp.SignatureError as err:
                raise StoreError('refusing the {0} at {1}: {2}'.format(
                    noun, fetched.url, err))
        try:
            text, signer = openpgp.verify_clearsigned(fetched.body, keys,
                                                      noun)
        except openpgp.SignatureError as err:
            raise StoreError('refusing the {0} at {1}: {2}'.format(
                noun, fetched.url, err))
        LOG.debug('the %s at %s is signed by %s', noun, fetched.url, signer)
        return text, signer

    def _virt_builder_catalog(self, fetched):
        text, signer = self._clearsigned(fetched, 'index')
        try:
            entries, warnings = virtbuilder.parse_index(text, fetched.url)
        except virtbuilder.VirtBuilderError as err:
            raise StoreError(six.text_type(err))
        catalog = virt_builder_catalog(entries, fetched.url, warnings)
        catalog.signed_by = signer
        return catalog

    def _simplestreams_catalog(self, fetched, cached, kind):
        text, signer = self._clearsigned(fetched, 'index')
        data = self._json(text, fetched.url)
        mirror = simplestreams.mirror_root(fetched.url)
        if kind == SIMPLESTREAMS_PRODUCTS:
            documents = [(fetched, text, signer, cached)]
            warnings = []
        else:
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
                self._check_updated(document, products, previous)
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
        text, signer = self._clearsigned(fetched, 'products file')
        self._keep(ref.url, fetched, cached)
        return fetched, text, signer, cached

    @staticmethod
    def _json(text, url):
        try:
            return load_json(text, 'the document at {0}'.format(url))
        except CatalogError as err:
            raise StoreError(six.text_type(err))

    def _check_updated(self, fetched, products, cached):
        """A signed products file must not be older than the copy cached
        (its "updated" time; a replayed one would hide newer versions)."""
        if cached is None or cached is fetched:
            return
        try:
            previous = load_json(openpgp.clearsigned_content_unverified(
                cached.body, 'products file') if openpgp.is_clearsigned(
                    cached.body) else cached.body, 'the cached copy')
        except (CatalogError, openpgp.SignatureError):
            return
        now, before = (parse_rfc2822(data.get('updated'))
                       if isinstance(data, dict) else None
                       for data in (products, previous))
        if before is not None and (now is None or now < before):
            raise StoreError(
                'refusing the products file at {0}: it is older than the '
                'one you had from it on {1}, so it may be a replayed file '
                'hiding newer images; try again later'.format(
                    fetched.url, cached.fetched_text))

    # ---------------------------------------------------------- policies

    def trusted_key_files(self):
        """
        The key files the user trusts: --trusted-key, else the config's
        "eustore-trusted-keys" (paths and globs, separated by commas).
        """
        if self.trusted_keys:
            return [os.path.expanduser(path) for path in self.trusted_keys]
        paths = []
        for pattern in (store_option(self.config, 'eustore-trusted-keys') or
                        '').split(','):
            pattern = os.path.expanduser(os.path.expandvars(pattern.strip()))
            if pattern:
                paths.extend(sorted(glob.glob(pattern)) or [pattern])
        return paths

    def check_signature(self, fetched):
        """
        Apply the user's policy to the catalog's signature: the signer's
        fingerprint when it verifies, None when the catalog goes unverified
        (with a warning), StoreError when it must not be used.
        """
        keys = self.trusted_key_files()
        self._log_policy(fetched, 'catalog', keys)
        if fetched.signature is None:
            self._unsigned(fetched, 'catalog', '(there is no {0})'.format(
                fetched.url + SIGNATURE_SUFFIX))
            return None
        if not keys:
            self._no_keys(fetched, 'catalog')
            return None
        try:
            signer = openpgp.verify_detached(fetched.body, fetched.signature,
                                             keys)
        except openpgp.SignatureError as err:
            raise StoreError('refusing the catalog at {0}: {1}'.format(
                fetched.url, err))
        LOG.debug('the catalog at %s is signed by %s', fetched.url, signer)
        return signer

    def signature_required(self):
        return self.config.convert_to_bool(
            store_option(self.config, 'eustore-require-signature'),
            default=bool(self.trusted_key_files()))

    def _log_policy(self, fetched, noun, keys):
        LOG.debug('signature policy for the %s at %s: %s; trusted keys: %s',
                  noun, fetched.url, 'signed catalogs only' if
                  self.signature_required() else 'unsigned or unverifiable '
                  'catalogs are used with a warning', ', '.join(keys) or
                  'none')

    def unsigned_accepted(self):
        """Whether the user accepts this store unsigned, without the
        warning ("eustore-accept-unsigned" of the region, else [global]);
        "eustore-require-signature" still wins."""
        return self.config.convert_to_bool(
            store_option(self.config, 'eustore-accept-unsigned'),
            default=False)

    def _unsigned(self, fetched, noun, how=''):
        if self.signature_required():
            raise StoreError(
                'the {0} at {1} is not signed{2}, and your configuration '
                'requires signed catalogs; ask the store\'s operator to sign '
                'it'.format(noun, fetched.url, ' ' + how if how else ''))
        if self.unsigned_accepted():
            LOG.debug('the %s at %s is not signed; accepted as the '
                      'configuration says', noun, fetched.url)
            return
        warn('the {0} at {1} is not signed, so the images it lists cannot '
             'be verified'.format(noun, fetched.url))

    def _no_keys(self, fetched, noun):
        if self.signature_required():
            raise StoreError(
                'your configuration requires signed catalogs, but names no '
                'key to trust: give --trusted-key FILE or set '
                '"eustore-trusted-keys"')
        warn('the {0} at {1} is signed, but you trust no key to check it '
             'with (give --trusted-key FILE or set "eustore-trusted-keys")'
             .format(noun, fetched.url))

    def check_freshness(self, catalog, cached):
        """
        Refuse a signed catalog that is expired, or older than the one
        cached: an attacker can replay any catalog ever signed, so the
        serial inside the signed text must not go backwards (TUF's rollback
        attack) and its validity must not have run out (freeze attack).
        """
        now = time.time()
        if catalog.valid_until is not None and catalog.valid_until < now:
            raise StoreError(
                'refusing the catalog at {0}: it expired on {1} (a store '
                'that cannot be updated, or an old catalog served again); '
                'ask the store\'s operator to publish it again'.format(
                    catalog.url, _utc(catalog.valid_until)))
        if cached is None:
            return
        try:
            previous = Catalog.parse(cached.body, cached.url)
        except CatalogError:
            return
        if previous.serial is None:
            return
        if catalog.serial is None or catalog.serial < previous.serial:
            raise StoreError(
                'refusing the catalog at {0}: it is older (serial {1}) than '
                'the one you had from it on {2} (serial {3}), so it may be '
                'a replayed catalog hiding withdrawn images; try again '
                'later, and tell the store\'s operator if it persists'
                .format(catalog.url, catalog.serial if catalog.serial
                        is not None else 'none', cached.fetched_text,
                        previous.serial))


def _utc(timestamp):
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(timestamp))


# ------------------------------------------------------------ store kinds

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
    """The URLs to try for a store's first document, in order."""
    if names_a_document(store_url):
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
