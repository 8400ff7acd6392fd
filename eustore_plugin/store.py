# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The image store as a requestbuilder service, and fetching its catalog.

A store is a plain HTTP(S) location (usually a public S3/Walrus bucket behind
a cache) holding a catalog and tarballs; air-gapped sites use ``file://`` URLs
or plain directories.  Its URL comes, like every euca2ools endpoint, from the
command line (``-U``), then the environment (``EUSTORE_URL``), then the
region's ``eustore-url`` config option, and finally the historical default.
"""

from __future__ import absolute_import

import glob
import io
import os.path

from requestbuilder import Arg
from requestbuilder.auth import BaseAuth
from requestbuilder.exceptions import ClientError, ServerError
from requestbuilder.request import BaseRequest
from requestbuilder.service import BaseService
import six
import six.moves.urllib_parse as urlparse
from six.moves.urllib.request import pathname2url, url2pathname

from eustore_plugin import openpgp
from eustore_plugin.backend import EustoreSuite
from eustore_plugin.catalog import Catalog
from eustore_plugin.catalogcache import CachedCatalog, CatalogCache
from eustore_plugin.output import warn


DEFAULT_STORE_URL = 'http://emis.eucalyptus.com/'
# The 2.x/3.0 clients fetched "<store>catalog"; the seed names it catalog.json.
CATALOG_NAMES = ('catalog', 'catalog.json')
# A catalog's detached OpenPGP signature is its URL plus this.
SIGNATURE_SUFFIX = '.asc'
# How a store says it has no such file: S3 answers 403 rather than 404 to
# anonymous readers of a bucket they may not list.
MISSING_STATUSES = (403, 404)


class StoreError(ClientError):
    """
    The store could not be read; the message says where and why, and
    ``status_code`` holds the HTTP status when the store answered one.
    """

    def __init__(self, message, status_code=None):
        ClientError.__init__(self, message)
        self.status_code = status_code


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


class EustoreService(BaseService):
    NAME = 'eustore'
    DESCRIPTION = 'Image store'
    URL_ENVVAR = 'EUSTORE_URL'
    REGION_ENVVAR = ('EUCA_DEFAULT_REGION', 'AWS_DEFAULT_REGION')
    ARGS = [Arg('-U', '--url', metavar='URL', help='''image store URL: a
                directory holding a catalog, a .json catalog, or a local
                path (default: $EUSTORE_URL, the "eustore-url" region
                option, or {0})'''.format(DEFAULT_STORE_URL))]

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

    def validate_config(self):
        self.endpoint = normalize_store_url(self.endpoint or
                                            DEFAULT_STORE_URL)

    def open_url(self, url, headers=None):
        """
        GET a URL of this store (http, https or file) as a streamed
        response-like object with ``status_code``, ``headers``, ``content``
        and ``iter_content``; raises StoreError naming the URL.
        """
        if urlparse.urlparse(url).scheme.lower() == 'file':
            return _LocalFileResponse(url)
        # A store's files live at URLs of their own (image URLs may even name
        # another host), so requestbuilder is pointed at each in turn.
        endpoint, self.endpoint = self.endpoint, url
        try:
            return self.send_request(method='GET', headers=headers or {})
        except ServerError as err:
            raise StoreError('the image store answered {0} {1} for {2}'
                             .format(err.status_code, err.reason, url),
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
    """A file:// URL read the way a streamed HTTP response would be."""

    status_code = 200
    reason = 'OK'

    def __init__(self, url):
        self.url = url
        path = url2pathname(urlparse.urlparse(url).path)
        try:
            self._file = io.open(path, 'rb')
        except (IOError, OSError) as err:
            raise StoreError('cannot read {0} ({1})'.format(
                url, err.strerror or err),
                404 if not os.path.exists(path) else None)
        self.headers = {'Content-Length': str(os.fstat(
            self._file.fileno()).st_size)}

    def iter_content(self, chunk_size=65536):
        with self._file:
            for chunk in iter(lambda: self._file.read(chunk_size), b''):
                yield chunk

    @property
    def content(self):
        return b''.join(self.iter_content())

    def close(self):
        self._file.close()


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


class EustoreRequest(BaseRequest):
    """Base of the eustore commands: the suite, the store, the options."""

    SUITE = EustoreSuite
    SERVICE_CLASS = EustoreService
    AUTH_CLASS = AnonymousStoreAuth

    def _build_parser(self):
        BaseRequest._build_parser(self)
        # euca2ools 2.x, whose options users know (see the seed's help),
        # also spelt --debug as -D; requestbuilder only has --debug.
        parser = self._cli_parser
        debug = parser._option_string_actions['--debug']
        debug.option_strings.insert(0, '-D')
        parser._option_string_actions['-D'] = debug


class CatalogRequest(EustoreRequest):
    """
    A command that reads the store's catalog: fetched with a conditional
    GET against the user's cached copy, used from that copy (with a notice)
    when the store cannot be reached, and checked against the OpenPGP keys
    the user trusts.
    """

    ARGS = [Arg('--trusted-key', dest='trusted_keys', metavar='FILE',
                action='append', route_to=None, help='''OpenPGP public key
                the store's catalog must be signed with; may be given more
                than once (default: the "eustore-trusted-keys" config
                option)''')]

    def fetch_catalog(self):
        """Read, verify and parse the store's catalog; raises StoreError."""
        store_url = self.service.endpoint
        local = urlparse.urlparse(store_url).scheme.lower() == 'file'
        cache = None if local else CatalogCache()
        cached = cache.load(store_url) if cache else None
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
        catalog = Catalog.parse(fetched.body, fetched.url)
        catalog.signed_by = signed_by
        if cache is not None and fetched is not cached:
            cache.save(store_url, fetched)
        return catalog

    def _fetch(self, store_url, cached):
        tried = []
        for url in catalog_candidates(store_url):
            validators = cached.validators() if cached and \
                cached.url == url else {}
            try:
                response = self._get(url, validators)
            except StoreError as err:
                if err.status_code == 304:
                    return self._refresh_signature(cached)
                if err.status_code in MISSING_STATUSES:
                    tried.append('{0} ({1})'.format(url, err.status_code))
                    continue
                raise
            return CachedCatalog(
                url, response.content, self._get_signature(url),
                etag=response.headers.get('ETag'),
                last_modified=response.headers.get('Last-Modified'))
        hint = 'check the store URL (-U or EUSTORE_URL)'
        if any(attempt.endswith('(403)') for attempt in tried):
            hint += ("; 403 is also how S3 refuses anonymous readers: a "
                     "store's files must be public-read")
        raise StoreError('the image store has no catalog: nothing at {0}; '
                         '{1}'.format(' or '.join(tried), hint), 404)

    def _get(self, url, headers=None):
        headers = dict(headers or {},
                       **{'User-Agent': self.suite.get_user_agent()})
        return self.service.open_url(url, headers=headers)

    def _get_signature(self, catalog_url):
        try:
            return self._get(catalog_url + SIGNATURE_SUFFIX).content
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
            return openpgp.verify_detached(fetched.body, fetched.signature,
                                           keys)
        except openpgp.SignatureError as err:
            raise StoreError('refusing the catalog at {0}: {1}'.format(
                fetched.url, err))

    def trusted_key_files(self):
        """
        The key files the user trusts: --trusted-key, else the config's
        "eustore-trusted-keys" (paths and globs, separated by commas).
        """
        if self.args.get('trusted_keys'):
            return [os.path.expanduser(path)
                    for path in self.args['trusted_keys']]
        paths = []
        for pattern in (store_option(self.config, 'eustore-trusted-keys') or
                        '').split(','):
            pattern = os.path.expanduser(os.path.expandvars(pattern.strip()))
            if pattern:
                paths.extend(sorted(glob.glob(pattern)) or [pattern])
        return paths


def store_option(config, name):
    """A store option of the region, else of the [global] section."""
    value = config.get_region_option(name)
    return value if value is not None else config.get_global_option(name)
