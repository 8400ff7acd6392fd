# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The operator's side of an image store: its bucket, and changing its catalog
safely.

A store is a bucket (or a key prefix in one) holding ``catalog``, its
detached OpenPGP signature ``catalog.asc``, and tarballs under
``images/<first 16 hex digits of their SHA-256>/<file name>``.  Tarball
keys are named by their content, so a tarball never changes in place: a
cache may keep it for as long as it likes, and a republished image gets a
new key while clients still reading the old catalog still find the old one.

Every change of the catalog follows the same order, so that the catalog
never names a tarball that is not there:

1. tarballs are uploaded (and checked) before the catalog names them;
2. under the store's lock, the catalog is read, changed, signed, and
   written back with ``If-Match`` on the ETag that was read, then its
   signature beside it;
3. tarballs the catalog no longer names are deleted only after that.

The lock is an object created with ``If-None-Match: *``, the conditional
write S3 (and moto, MinIO, Ceph) honour.  Conditional writes alone cannot
keep two objects -- catalog and signature -- consistent with each other
under concurrent publishers, hence one lock for the pair; the ``If-Match``
on the catalog still catches a publisher that ignored or broke the lock.
"""

from __future__ import absolute_import

import contextlib
import io
import json
import os
import random
import socket
import tarfile
import time
import zlib

from requestbuilder import Arg
from requestbuilder.exceptions import ClientError
import requests
import six

from eustore_plugin import openpgp
from eustore_plugin.catalog import tarball_urls
from eustore_plugin.cloud import (S3_URL_ARG, Cloud, CloudCredentialArgs,
                                  CloudError)
from eustore_plugin.download import Hashes
from eustore_plugin.layout import LayoutError
from eustore_plugin.output import warn
from eustore_plugin.store import (CATALOG_NAMES, SIGNATURE_SUFFIX,
                                  EustoreRequest, store_option)


LOCK_SUFFIX = '.lock'
TARBALL_DIR = 'images'
# S3 takes at most 5 GiB in one PUT; image tarballs (of images of at most
# 10 GiB, compressed) stay under it.
MAX_SINGLE_PUT = 5 * 1024 ** 3
# How long a publisher waits for another one's lock, and how many times a
# catalog write refused by its condition is tried again.
LOCK_WAIT_SECONDS = 60
WRITE_ATTEMPTS = 5


class PublishError(ClientError):
    pass


class StoreLockedError(PublishError):
    pass


# ------------------------------------------------------------------ tarball

class TarballFacts(object):
    """What one pass over a local tarball learnt: its members and digests."""

    def __init__(self, path, size, sha256, md5, members):
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.members = members

    @property
    def key_name(self):
        """Its content-addressed key in a store, relative to the store."""
        return '{0}/{1}/{2}'.format(TARBALL_DIR, self.sha256[:16],
                                    os.path.basename(self.path))


class _HashingReader(object):
    def __init__(self, fileobj):
        self._file = fileobj
        self.hashes = Hashes()
        self.size = 0

    def read(self, size=-1):
        data = self._file.read(size)
        self.hashes.update(data)
        self.size += len(data)
        return data


def inspect_tarball(path):
    """
    Read a local tar.gz once: its member list (for the layout rules) and its
    size, SHA-256 and MD5 (for the catalog).  Raises LayoutError when it is
    not a tar.gz.
    """
    try:
        source = io.open(path, 'rb')
    except (IOError, OSError) as err:
        raise LayoutError('cannot read {0} ({1})'.format(
            path, err.strerror or err))
    with source:
        reader = _HashingReader(source)
        try:
            # Big reads: tarfile's default (10 KiB) costs more in calls than
            # decompressing and hashing do.
            with tarfile.open(fileobj=reader, mode='r|gz',
                              bufsize=1 << 20) as tar:
                members = list(tar)
        except (tarfile.TarError, zlib.error, IOError, EOFError) as err:
            raise LayoutError('{0} is not a readable tar.gz ({1}); an image '
                              'store holds gzipped tarballs'.format(path, err))
        for _ in iter(lambda: reader.read(1 << 20), b''):
            pass  # what is left after the archive's end: padding, trailer
    return TarballFacts(path, reader.size, reader.hashes.sha256.hexdigest(),
                        reader.hashes.md5.hexdigest(), members)


# -------------------------------------------------------------------- store

class StoreBucket(object):
    """
    A store as S3 sees it: ``location`` is ``BUCKET`` or ``BUCKET/PREFIX``
    (the store's root inside the bucket), as euca2ools takes ``-b``.
    """

    def __init__(self, cloud, location):
        bucket, _, prefix = location.strip('/').partition('/')
        if not bucket:
            raise PublishError('-b/--bucket: give the store\'s bucket, '
                               'optionally with a prefix: BUCKET[/PREFIX]')
        self.cloud = cloud
        self.bucket = bucket
        self.prefix = prefix + '/' if prefix else ''
        self._catalog_name = None

    def key(self, name):
        return self.prefix + name

    def __str__(self):
        return '{0}/{1}'.format(self.bucket, self.prefix)

    @property
    def catalog_name(self):
        """The catalog's name: the one the store has, else "catalog"."""
        if self._catalog_name is None:
            self._catalog_name = CATALOG_NAMES[0]
            for name in CATALOG_NAMES:
                if self.cloud.head_object(self.bucket, self.key(name)):
                    self._catalog_name = name
                    break
        return self._catalog_name

    @property
    def signature_name(self):
        return self.catalog_name + SIGNATURE_SUFFIX

    def ensure_bucket(self):
        if not self.cloud.bucket_exists(self.bucket):
            self.cloud.create_bucket(self.bucket)

    def read_catalog(self):
        """(bytes, ETag) of the catalog; (None, None) for a new store."""
        return self.cloud.get_object_if_any(self.bucket,
                                            self.key(self.catalog_name))

    def has_signature(self):
        return self.cloud.head_object(
            self.bucket, self.key(self.signature_name)) is not None

    def put_public(self, name, data, content_type, headers=None):
        headers = dict(headers or {}, **{'Content-Type': content_type})
        return self.cloud.put_object(self.bucket, self.key(name), data,
                                     acl='public-read', headers=headers)

    def write_catalog(self, document, etag):
        """
        Write the catalog if it is still the one read (``etag``; None: if
        there is still none).  Returns False when another writer got there
        first.
        """
        condition = {'If-Match': etag} if etag else {'If-None-Match': '*'}
        return _unless_refused(self.put_public, self.catalog_name, document,
                               'application/json', condition)

    def write_signature(self, signature):
        if signature is None:
            self.delete(self.signature_name)
        else:
            self.put_public(self.signature_name, signature,
                            'application/pgp-signature')

    def delete(self, name):
        self.cloud.delete_object(self.bucket, self.key(name))

    def upload_tarball(self, facts):
        """
        Upload a tarball to its content-addressed key, unless it is there
        already (a republish); True if this call uploaded it.
        """
        name = facts.key_name
        present = self.cloud.head_object(self.bucket, self.key(name))
        if present and _int(present.get('Content-Length')) == facts.size:
            return False
        if facts.size > MAX_SINGLE_PUT:
            raise PublishError(
                '{0} is {1} bytes, more than S3 takes in one upload (5 GiB); '
                'compress the image better or split it'.format(
                    facts.path, facts.size))
        self.cloud.put_file(self.bucket, self.key(name), facts.path,
                            acl='public-read',
                            headers={'Content-Type': 'application/x-gzip'})
        stored = self.cloud.head_object(self.bucket, self.key(name))
        if not stored or _int(stored.get('Content-Length')) != facts.size:
            raise PublishError('the tarball uploaded to {0}{1} is not the '
                               'size of {2}; try again'.format(self, name,
                                                               facts.path))
        return True

    # The lock -----------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, break_lock=False, wait=LOCK_WAIT_SECONDS):
        name = self.catalog_name + LOCK_SUFFIX
        holder = json.dumps({
            'owner': '{0} pid {1}'.format(socket.gethostname(), os.getpid()),
            'since': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                   time.gmtime())}).encode('utf-8')
        deadline = time.time() + wait
        while not self._create(name, holder):
            if break_lock:
                warn('breaking the store\'s lock, held by {0}'.format(
                    self._lock_holder(name)))
                self.delete(name)
                break_lock = False
                continue
            if time.time() > deadline:
                raise StoreLockedError(
                    'the store {0} is being changed by {1}; if that '
                    'publisher is gone, run again with --break-lock'
                    .format(self, self._lock_holder(name)))
            time.sleep(random.uniform(0.1, 0.5))
        if self._create(name, holder):
            warn('the object store ignores conditional writes '
                 '(If-None-Match), so the store cannot be locked: do not run '
                 'two publishers at once')
        try:
            yield
        finally:
            self.delete(name)

    def _create(self, name, body):
        return _unless_refused(self.cloud.put_object, self.bucket,
                               self.key(name), body, acl='private',
                               headers={'If-None-Match': '*'})

    def _lock_holder(self, name):
        body, _ = self.cloud.get_object_if_any(self.bucket, self.key(name))
        try:
            holder = json.loads(body.decode('utf-8'))
            return '{0} (since {1})'.format(holder['owner'], holder['since'])
        except (AttributeError, ValueError, KeyError, TypeError):
            return 'another publisher'


def _unless_refused(put, *args, **kwargs):
    """Make a conditional PUT: False when its condition refused it."""
    try:
        put(*args, **kwargs)
    except CloudError as err:
        if err.status_code in (409, 412):
            return False
        raise
    return True


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------ changes

class CatalogSigner(object):
    """Signs catalogs with the operator's OpenPGP key (None: gpg's default)."""

    def __init__(self, key_id=None):
        self.key_id = key_id

    def sign(self, document):
        return openpgp.sign_detached(document, key_id=self.key_id)


def change_catalog(store, change, signer=None, break_lock=False):
    """
    Apply ``change(document) -> (new document, info)`` to the store's
    catalog under its lock, sign the result when ``signer`` is given, and
    write both.  Returns (new document, info).  Nothing is left changed
    when this fails.
    """
    with store.locked(break_lock=break_lock):
        signed = store.has_signature()
        if signed and signer is None:
            raise PublishError(
                'the catalog of {0} is signed; give --sign-key (or set '
                '"eustore-sign-key") so that it stays signed'.format(store))
        for _ in range(WRITE_ATTEMPTS):
            old, etag = store.read_catalog()
            new, info = change(old)
            signature = signer.sign(new) if signer else None
            if store.write_catalog(new, etag):
                break
        else:
            raise PublishError(
                'the catalog of {0} kept changing under this publisher: is '
                'another one ignoring the store\'s lock?'.format(store))
        try:
            if signer is not None:
                store.write_signature(signature)
        except BaseException:
            _restore_catalog(store, old)
            raise
    if signer is None:
        warn('the catalog is not signed, so its users cannot verify it; '
             'give --sign-key to sign it')
    return new, info


def _restore_catalog(store, old):
    try:
        if old is None:
            store.delete(store.catalog_name)
        else:
            store.put_public(store.catalog_name, old, 'application/json')
    except Exception as err:  # the caller reports the first failure
        warn('could not put the previous catalog back ({0})'.format(err))


def unreferenced_tarballs(document, candidates):
    """The relative tarball urls among ``candidates`` no entry names."""
    still_named = tarball_urls(document)
    return [url for url in candidates
            if url and url not in still_named and '://' not in url and
            not url.startswith('/') and '..' not in url.split('/')]


def purge_caches(cache_urls, names, user_agent=None):
    """
    Ask each cache (a Varnish in front of the store) to drop its copies of
    ``names``.  A cache that refuses gets a warning, not a failure: the
    store is already right, and the cache's copy expires by itself.
    """
    headers = {'User-Agent': user_agent} if user_agent else {}
    for cache_url in cache_urls:
        base = cache_url if cache_url.endswith('/') else cache_url + '/'
        for name in names:
            url = six.moves.urllib.parse.urljoin(base, name)
            try:
                response = requests.request('PURGE', url, headers=headers,
                                            timeout=30)
            except requests.RequestException as err:
                warn('could not purge {0} ({1}); the cache serves the old '
                     'copy until it expires'.format(url, err))
                continue
            if response.status_code >= 400 and response.status_code != 404:
                warn('the cache refused to purge {0} ({1} {2}); the cache '
                     'serves the old copy until it expires'.format(
                         url, response.status_code, response.reason))


# ----------------------------------------------------------------- commands

class PublisherRequest(EustoreRequest):
    """
    Base of the commands that change a store: its bucket in the operator's
    object storage, the operator's credentials, the catalog's signing key
    and the caches to purge.
    """

    AUTH_CLASS = CloudCredentialArgs
    ARGS = [Arg('-b', '--bucket', metavar='BUCKET[/PREFIX]', required=True,
                route_to=None, help='''the store's bucket, and the prefix
                of its files in it if any'''),
            S3_URL_ARG,
            Arg('--sign-key', metavar='KEYID', route_to=None,
                help='''OpenPGP key (as gpg names it) to sign the catalog
                with (default: the "eustore-sign-key" config option; a
                store with a signed catalog needs one)'''),
            Arg('--purge', metavar='CACHE_URL', action='append',
                route_to=None, help='''URL of a cache (Varnish) in front of
                the store, to purge the catalog from; may be given more
                than once'''),
            Arg('--break-lock', action='store_true', route_to=None,
                help='''take the store's lock even though another publisher
                holds it (only when that one is known to be gone)''')]

    def open_store(self):
        cloud = Cloud.from_command(self, s3_url=self.args.get('s3_url'),
                                   s3_only=True)
        return StoreBucket(cloud, self.args['bucket'])

    def signer(self):
        key_id = self.args.get('sign_key') or \
            store_option(self.config, 'eustore-sign-key')
        return CatalogSigner(key_id) if key_id else None

    def change_catalog(self, store, change):
        return change_catalog(store, change, signer=self.signer(),
                              break_lock=self.args.get('break_lock'))

    def remove_tarballs(self, store, document, urls):
        """Delete tarballs the catalog no longer names, after it changed."""
        for url in unreferenced_tarballs(document, urls):
            try:
                store.delete(url)
            except CloudError as err:
                warn('could not delete the tarball {0}{1} no entry names any '
                     'more ({2})'.format(store, url, err))

    def purge(self, store):
        purge_caches(self.args.get('purge') or (),
                     [store.catalog_name, store.signature_name],
                     user_agent=self.suite.get_user_agent())
