# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The image store as a requestbuilder service: how its files are read.

A store is a plain HTTP(S) location (usually a public S3/Walrus bucket behind
a cache) holding a catalog and tarballs; air-gapped sites use ``file://`` URLs
or plain directories.  Its URL comes, like every euca2ools endpoint, from the
command line (``-U``), then the environment (``EUSTORE_URL``), then the
region's ``eustore-url`` config option, and finally the historical default.

Everything a store sends is attacker input (docs/threat-model.md): what its
catalog may make the tools read is the URL policy's (urlpolicy.py), every
redirect included; a document has a size limit, before and after any
Content-Encoding; every read has a progress deadline.
"""

from __future__ import absolute_import

import io
import logging
import os
import os.path
import stat

from requestbuilder import Arg
from requestbuilder.auth import BaseAuth
from requestbuilder.exceptions import ClientError, ServerError
from requestbuilder.service import BaseService
import requests.adapters
import six
from six.moves.urllib.request import pathname2url, url2pathname
import six.moves.urllib_parse as urlparse

from eustore_plugin.errors import EustoreError
from eustore_plugin.limits import DOCUMENT
from eustore_plugin.store.download import (CHUNK_SIZE, DEFAULT_PACE, STALLED,
                                           TOO_SLOW, TransferWatch,
                                           pace_message, stall_message)
from eustore_plugin.store.kinds import names_a_document
from eustore_plugin.store.urlpolicy import UrlPolicy, UrlRefused
from eustore_plugin.values import as_count

LOG = logging.getLogger(__name__)

DEFAULT_STORE_URL = 'http://emis.eucalyptus.com/'


class StoreError(EustoreError):
    """The store could not be read; the message says where and why."""


def with_store_choice(err, store_url):
    """
    ``err``, a StoreError from reading the first document of the store at
    ``store_url``, saying how to choose another store when that is the
    built-in default: a user who chose none has no other way to learn it.
    """
    if store_url != DEFAULT_STORE_URL:
        return err
    return StoreError(
        u'{0}; {1} is the built-in default store, which no longer serves '
        u'images: choose a store with -U URL, EUSTORE_URL or the '
        u'"eustore-url" option of your region (eustore catalogs, '
        u'simplestreams mirrors and virt-builder indexes are read, over '
        u'HTTP(S) or from a local file or directory)'.format(
            six.text_type(err), DEFAULT_STORE_URL), err.status_code)


def normalize_store_url(url):
    """
    A store URL that names a directory ends in "/" so that relative names
    resolve inside it, and one that names the store's first document does
    not; a plain local path becomes a file:// URL.  What is on this machine
    is a directory or a document by what it is (a file is the document it
    holds, whatever its name); a URL of the network by its name (.json,
    index: kinds.names_a_document).
    """
    scheme = urlparse.urlparse(url).scheme.lower()
    if scheme not in ('http', 'https', 'file'):
        url = 'file://' + pathname2url(os.path.abspath(
            os.path.expanduser(url)))
        scheme = 'file'
    if url.endswith('/'):
        return url
    if scheme == 'file':
        path = url2pathname(urlparse.urlparse(url).path)
        if os.path.isdir(path):
            return url + '/'
        if os.path.exists(path):
            return url
    return url if names_a_document(url) else url + '/'


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
                directory holding a catalog or index, the URL of one, or a
                local file or directory (default: $EUSTORE_URL, the
                "eustore-url" region option, or {0})'''.format(
                    DEFAULT_STORE_URL))]

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


def read_document(service, url, headers=None, limit=DOCUMENT,
                  pace=DEFAULT_PACE):
    """
    A whole small file of the store (a catalog, an index, a signature) as
    (bytes, response), read with a size limit (a SizeLimit) on the wire and
    after decoding, and a pace (download.Pace); raises StoreError.
    """
    response = service.open_url(url, headers=headers)
    length = _header_int(response, 'Content-Length')
    if length is not None and length > limit.size:
        response.close()
        raise StoreError('the store sends {0} bytes for {1}, more than the '
                         '{2} bytes a {3} may have; check the store URL'
                         .format(length, url, limit.size, limit.what))
    watch = TransferWatch(pace)
    watch.watch(response)
    pieces, size = [], 0
    chunks = iter(response.iter_content(CHUNK_SIZE))
    try:
        while True:
            chunk = watch.next_chunk(chunks)
            if watch.fired:
                break
            if chunk is None:
                break
            size += len(chunk)
            wire = _wire_bytes(response)
            if size > limit.size or (wire is not None and
                                     wire > limit.size):
                raise StoreError(
                    'the document at {0} is larger than the {1} bytes a {2} '
                    'may have (after decoding); check the store URL'
                    .format(url, limit.size, limit.what))
            pieces.append(chunk)
    except (IOError, OSError, requests.exceptions.RequestException) as err:
        if not watch.fired:
            raise StoreError('reading {0} failed ({1})'.format(url, err))
    finally:
        watch.stop()
        response.close()
    if watch.fired == STALLED:
        raise StoreError(stall_message(url, watch))
    if watch.fired == TOO_SLOW:
        raise StoreError(pace_message(url, watch))
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


def presence_problems(service, image):
    """
    What is wrong with the file ``image`` (a catalog entry's tarball, its
    whole-disk image) as far as its first byte tells: missing, or not the
    size the catalog gives.
    """
    try:
        response = service.open_url(image.location,
                                    headers={'Range': 'bytes=0-0'})
    except StoreError as err:
        return [six.text_type(err)]
    try:
        total = _total_size(response)
    finally:
        response.close()
    if image.size is not None and total is not None and \
            total != image.size:
        return ['size should be {0} but is {1}'.format(image.size, total)]
    return []


def _total_size(response):
    """The whole file's size, from a 206's Content-Range or a 200's length."""
    content_range = response.headers.get('Content-Range') or ''
    if '/' in content_range:
        total = content_range.rsplit('/', 1)[1]
    else:
        total = response.headers.get('Content-Length')
    try:
        return int(total)
    except (TypeError, ValueError):
        return None
