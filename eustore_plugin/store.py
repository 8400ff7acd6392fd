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

from eustore_plugin import openpgp
from eustore_plugin.catalog import Catalog, CatalogError
from eustore_plugin.catalogcache import CachedCatalog, CatalogCache
from eustore_plugin.download import (CHUNK_SIZE, DEFAULT_STALL_TIMEOUT,
                                     StallWatch)
from eustore_plugin.errors import EustoreError
from eustore_plugin.output import warn
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
    if url.lower().endswith('.json') or url.endswith('/'):
        return url
    return url + '/'


def catalog_candidates(store_url):
    """The URLs to try for the catalog, in order."""
    if store_url.lower().endswith('.json'):
        return [store_url]
    return [urlparse.urljoin(store_url, name) for name in CATALOG_NAMES]


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
    expired.
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
        cached = self.cache.load(store_url) if self.cache else None
        try:
            fetched = self._fetch(store_url, cached)
        except StoreError as err:
            if cached is None or (err.status_code is not None and
                                  err.status_code < 500):
                raise
            warn(u'{0}; using its catalog as fetched at {1}, which may '
                 u'be out of date'.format(err, cached.fetched_text))
            fetched = cached
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
        if self.cache is not None and fetched is not cached:
            self.cache.save(store_url, fetched)
        return catalog

    def _get(self, url, headers=None, limit=MAX_DOCUMENT_BYTES):
        headers = dict(headers or {})
        if self.user_agent:
            headers['User-Agent'] = self.user_agent
        return read_document(self.service, url, headers, limit,
                             self.stall_timeout)

    def _fetch(self, store_url, cached):
        tried = []
        for url in catalog_candidates(store_url):
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
                    return self._refresh_signature(cached)
                if err.status_code in MISSING_STATUSES:
                    tried.append('{0} ({1})'.format(url, err.status_code))
                    continue
                raise
            return CachedCatalog(
                url, body, self._get_signature(url),
                etag=response.headers.get('ETag'),
                last_modified=response.headers.get('Last-Modified'))
        hint = 'check the store URL (-U or EUSTORE_URL)'
        if any(attempt.endswith('(403)') for attempt in tried):
            hint += ("; 403 is also how S3 refuses anonymous readers: a "
                     "store's files must be public-read")
        raise StoreError('the image store has no catalog: nothing at {0}; '
                         '{1}'.format(' or '.join(tried), hint), 404)

    def _get_signature(self, catalog_url):
        try:
            return self._get(catalog_url + SIGNATURE_SUFFIX,
                             limit=MAX_SIGNATURE_BYTES)[0]
        except StoreError as err:
            if err.status_code in MISSING_STATUSES:
                return None
            raise

    def _refresh_signature(self, cached):
        """An unchanged catalog, whose signature may still be new."""
        return CachedCatalog(cached.url, cached.body,
                             self._get_signature(cached.url),
                             etag=cached.etag,
                             last_modified=cached.last_modified)

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
        required = self.config.convert_to_bool(
            store_option(self.config, 'eustore-require-signature'),
            default=bool(keys))
        LOG.debug('signature policy: %s; trusted keys: %s',
                  'signed catalogs only' if required else
                  'unsigned or unverifiable catalogs are used with a warning',
                  ', '.join(keys) or 'none')
        signature_url = fetched.url + SIGNATURE_SUFFIX
        if fetched.signature is None:
            if required:
                raise StoreError(
                    'the catalog at {0} is not signed (there is no {1}), and '
                    'your configuration requires signed catalogs; ask the '
                    'store\'s operator to sign it'.format(
                        fetched.url, signature_url))
            warn('the catalog at {0} is not signed, so the images it lists '
                 'cannot be verified'.format(fetched.url))
            return None
        if not keys:
            if required:
                raise StoreError(
                    'your configuration requires signed catalogs, but names '
                    'no key to trust: give --trusted-key FILE or set '
                    '"eustore-trusted-keys"')
            warn('the catalog at {0} is signed, but you trust no key to '
                 'check it with (give --trusted-key FILE or set '
                 '"eustore-trusted-keys")'.format(fetched.url))
            return None
        try:
            signer = openpgp.verify_detached(fetched.body, fetched.signature,
                                             keys)
        except openpgp.SignatureError as err:
            raise StoreError('refusing the catalog at {0}: {1}'.format(
                fetched.url, err))
        LOG.debug('the catalog at %s is signed by %s', fetched.url, signer)
        return signer

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
