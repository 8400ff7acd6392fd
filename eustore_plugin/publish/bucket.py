# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A store as its operator's object storage sees it: a bucket (or a key
prefix in one) holding ``catalog``, its detached OpenPGP signature
``catalog.asc``, tarballs under ``images/<first 16 hex digits of their
SHA-256>/<file name>``, and, while a publisher changes the catalog, its
lock ``catalog.lock``.

Tarball keys are named by their content, so a tarball never changes in
place: a cache may keep it for as long as it likes, and a republished image
gets a new key while clients still reading the old catalog still find the
old one.

The lock is an object created with ``If-None-Match: *``, the conditional
write S3 (and moto, MinIO, Ceph) honour, holding a token of its publisher's
own: a publisher checks the token is still its own before it writes and
before it releases the lock, so that one whose lock was broken
(``--break-lock``) neither writes over its successor nor removes its lock.

The catalog and its signature are replaced with ``If-Match`` on the ETag
read.  Not every server reads that condition right: Ceph RGW 16 compares
the quoted ETag HTTP sends with its own bare one, and refuses (412) every
If-Match.  So a 412 is taken for a conflict only once the object's ETag is
seen to have moved; while it has not, the server misread the condition
(see :meth:`StoreBucket.put_if_unchanged`).
"""

from __future__ import absolute_import

import json
import logging
import os
import random
import socket
import sys
import time
import uuid

from eustore_plugin.catalogs.catalog import store_key
from eustore_plugin.cloud.client import PROBE_BODY
from eustore_plugin.cloud.services import CloudError
from eustore_plugin.errors import EustoreError
from eustore_plugin.output import warn
from eustore_plugin.store.reader import CATALOG_NAMES, SIGNATURE_SUFFIX
from eustore_plugin.urlkeys import quote_key
from eustore_plugin.values import as_count, utc_text

LOG = logging.getLogger(__name__)

LOCK_SUFFIX = '.lock'
TARBALL_DIR = 'images'
# S3 takes at most 5 GiB in one PUT; image tarballs (of images of at most
# 10 GiB, compressed) stay under it.
MAX_SINGLE_PUT = 5 * 1024 ** 3
# How long a publisher waits for another one's lock.
LOCK_WAIT_SECONDS = 60


class PublishError(EustoreError):
    pass


class StoreLockedError(PublishError):
    pass


class LockLostError(PublishError):
    pass


def bare_etag(etag):
    """An ETag without its quotes (and weakness mark), to compare."""
    if etag is None:
        return None
    etag = etag.strip()
    if etag.startswith('W/'):
        etag = etag[2:]
    return etag.strip('"')


def unless_refused(put, *args, **kwargs):
    """Make a conditional PUT: its response, or None when its condition
    refused it."""
    try:
        return put(*args, **kwargs)
    except CloudError as err:
        if err.status_code in (409, 412):
            return None
        raise


class StoreLock(object):
    """
    The store's lock (see the module's docstring), for StoreBucket: an
    object created only where none is (``If-None-Match: *``), holding its
    publisher's token.  Uses the bucket's ``cloud``, ``bucket``, ``key()``,
    ``lock_name`` and ``delete()``.
    """

    _lock_token = None

    def lock(self, break_lock=False, wait=LOCK_WAIT_SECONDS):
        """Take the store's lock (waiting up to ``wait`` seconds)."""
        token = uuid.uuid4().hex
        holder = json.dumps({
            'owner': '{0} pid {1}'.format(socket.gethostname(), os.getpid()),
            'since': utc_text(time.time()), 'token': token}).encode('utf-8')
        deadline = time.time() + wait
        while not self._create(self.lock_name, holder):
            if break_lock:
                warn('breaking the store\'s lock, held by {0}'.format(
                    self.lock_holder()))
                self.delete(self.lock_name)
                break_lock = False
                continue
            if time.time() > deadline:
                raise StoreLockedError(
                    'the store {0} is being changed by {1}; if that '
                    'publisher is gone, run again with --break-lock'
                    .format(self, self.lock_holder()))
            time.sleep(random.uniform(0.1, 0.5))
        self._lock_token = token
        if self._create(self.lock_name, holder):
            warn('the object store ignores conditional writes '
                 '(If-None-Match), so the store cannot be locked: do not run '
                 'two publishers at once')

    def still_locked(self):
        """Raise LockLostError unless the lock is still this publisher's."""
        holder = self._read_lock()
        if holder.get('token') != self._lock_token:
            raise LockLostError(
                'this publisher\'s lock on {0} was taken by {1} (with '
                '--break-lock?) while it worked'.format(
                    self, self._describe(holder)))

    def unlock(self):
        """Release the lock if it is still this publisher's."""
        holder = self._read_lock()
        if holder.get('token') == self._lock_token:
            self.delete(self.lock_name)
        elif holder:
            warn('the store\'s lock is now held by {0}; it was left in '
                 'place'.format(self._describe(holder)))
        self._lock_token = None

    def _create(self, name, body):
        return unless_refused(self.cloud.put_object, self.bucket,
                              self.key(name), body, acl='private',
                              headers={'If-None-Match': '*'}) is not None

    def _read_lock(self):
        body, _ = self.cloud.get_object_if_any(self.bucket,
                                               self.key(self.lock_name))
        try:
            holder = json.loads(body.decode('utf-8'))
        except (AttributeError, ValueError):
            return {} if body is None else {'owner': 'another publisher'}
        return holder if isinstance(holder, dict) else {}

    @staticmethod
    def _describe(holder):
        if not holder:
            return 'nobody (it was removed)'
        return '{0} (since {1})'.format(holder.get('owner', '?'),
                                        holder.get('since', '?'))

    def lock_holder(self):
        return self._describe(self._read_lock())

    def lock_state(self):
        """Who holds the store's lock, or '' when nobody does (what a dry
        run says; nothing is taken)."""
        holder = self._read_lock()
        return self._describe(holder) if holder else ''


class StoreBucket(StoreLock):
    """
    ``location`` is ``BUCKET`` or ``BUCKET/PREFIX`` (the store's root inside
    the bucket), as euca2ools takes ``-b``.
    """

    def __init__(self, cloud, location):
        bucket, _, prefix = location.strip('/').partition('/')
        if not bucket:
            raise PublishError('-b/--bucket: give the store\'s bucket, '
                               'optionally with a prefix: BUCKET[/PREFIX]')
        self.cloud = cloud
        self.bucket = bucket
        self.prefix = prefix.strip('/') + '/' if prefix.strip('/') else ''
        self._catalog_name = None
        # (whether it existed, its ETag) when has_signature() looked.
        self._signature_seen = None
        # How If-Match carries an ETag to this S3: quoted, as HTTP has it,
        # until the server shows it wants it bare (put_if_unchanged).
        self._quote_if_match = True
        self._if_match_ignored = False
        # What try_conditions found, for a dry run to report.
        self.conditions = None

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

    @property
    def lock_name(self):
        return self.catalog_name + LOCK_SUFFIX

    def protected_names(self):
        """What no withdrawal may delete, whatever a catalog says."""
        names = set()
        for name in CATALOG_NAMES:
            names.update((name, name + SIGNATURE_SUFFIX, name + LOCK_SUFFIX))
        return names

    def ensure_bucket(self):
        if not self.cloud.bucket_exists(self.bucket):
            self.cloud.create_bucket(self.bucket)

    # The catalog and its signature -------------------------------------

    def read_catalog(self):
        """(bytes, ETag) of the catalog; (None, None) for a new store."""
        return self.cloud.get_object_if_any(self.bucket,
                                            self.key(self.catalog_name))

    def has_signature(self):
        """Whether the catalog is signed; the signature as seen now is what
        :meth:`write_signature` replaces, and nothing else."""
        headers = self.cloud.head_object(self.bucket,
                                         self.key(self.signature_name))
        self._signature_seen = (headers is not None,
                                headers.get('ETag') if headers else None)
        return headers is not None

    def put_public(self, name, data, content_type, headers=None):
        headers = dict(headers or {}, **{'Content-Type': content_type})
        return self.cloud.put_object(self.bucket, self.key(name), data,
                                     acl='public-read', headers=headers)

    def etag(self, name):
        """The ETag the object ``name`` has now (None: there is none)."""
        headers = self.cloud.head_object(self.bucket, self.key(name))
        return headers.get('ETag') if headers else None

    def put_if_unchanged(self, name, data, content_type, etag):
        """
        Write the public object ``name`` if it is still the one whose ETag
        is ``etag`` (None: if there is still none).  Returns the response,
        or None when another writer changed it first (its ETag moved).

        A server that refuses an If-Match the object meets is asked again
        with the ETag bare (what RGW 16 compares with), and so from then
        on; one that refuses that too is written to unconditionally, with
        a warning: the store's lock alone keeps other publishers out then.
        """
        def put(condition):
            return unless_refused(self.put_public, name, data, content_type,
                                  condition)
        if not etag:
            return put({'If-None-Match': '*'})
        while not self._if_match_ignored:
            response = put({'If-Match': '"{0}"'.format(bare_etag(etag))
                            if self._quote_if_match else bare_etag(etag)})
            if response is not None:
                return response
            if bare_etag(self.etag(name)) != bare_etag(etag):
                return None  # a real conflict
            if self._quote_if_match:
                LOG.debug('S3 at %s refused If-Match with the ETag %s has '
                          '(%s): asking with the ETag bare', self.endpoint,
                          name, etag)
                self._quote_if_match = False
            else:
                self._if_match_ignored = True
                warn('S3 at {0} refuses If-Match even with the ETag {1}{2} '
                     'has, so the store\'s catalog is replaced without that '
                     'check: only the store\'s lock keeps other publishers '
                     'from overwriting each other'.format(self.endpoint,
                                                          self, name))
        return self.put_public(name, data, content_type)

    @property
    def endpoint(self):
        return self.cloud.s3.endpoint

    def try_conditions(self, key, etag):
        """
        Try the conditional writes publishing relies on, on a dry run's
        probe object ``key`` (whose ETag is ``etag``), written again with
        the same bytes; what the S3 made of them goes to ``conditions`` (a
        sentence), and If-Match is sent the way it takes.
        """
        def put(condition):
            return unless_refused(self.cloud.put_object, self.bucket, key,
                                  PROBE_BODY, acl='private',
                                  headers=condition)
        if put({'If-None-Match': '*'}) is not None:
            self.conditions = (
                'S3 ignores If-None-Match (it replaced an object that '
                'exists), so the store cannot be locked: do not run two '
                'publishers at once')
        elif not etag:
            self.conditions = (
                'S3 gives objects no ETag, so the catalog cannot be written '
                'with If-Match: only the store\'s lock protects it')
        elif put({'If-Match': '"{0}"'.format(bare_etag(etag))}) is not None:
            self.conditions = 'If-None-Match and If-Match honoured'
        elif put({'If-Match': bare_etag(etag)}) is not None:
            self._quote_if_match = False
            self.conditions = (
                'S3 refuses If-Match with the ETag an object has, quoted as '
                'HTTP sends it, and takes it bare (as Ceph RGW 16 reads it): '
                'the catalog would be written with the bare ETag')
        else:
            self._if_match_ignored = True
            self.conditions = (
                'S3 refuses If-Match even with the ETag an object has: the '
                'catalog would be replaced without that check, and only the '
                'store\'s lock would keep other publishers from overwriting '
                'each other')

    def write_catalog(self, document, etag):
        """
        Write the catalog if it is still the one read (``etag``; None: if
        there is still none).  Returns the new ETag (True if the store gave
        none), or None when another writer got there first.
        """
        response = self.put_if_unchanged(self.catalog_name, document,
                                         'application/json', etag)
        if response is None:
            return None
        return response.headers.get('ETag') or True

    def write_signature(self, signature):
        """
        Write (or, for None, delete) the catalog's signature.  A signature
        replaces only the one :meth:`has_signature` saw (``If-Match`` its
        ETag, or ``If-None-Match: *`` when there was none): False when
        another publisher wrote one since.
        """
        if signature is None:
            self.delete(self.signature_name)
            return True
        existed, etag = self._signature_seen or (None, None)
        if not (etag or existed is False):  # not looked at: replace it
            self.put_public(self.signature_name, signature,
                            'application/pgp-signature')
            return True
        return self.put_if_unchanged(self.signature_name, signature,
                                     'application/pgp-signature',
                                     etag) is not None

    def delete(self, name):
        self.cloud.delete_object(self.bucket, self.key(name))

    # Tarballs ----------------------------------------------------------

    def tarball_name(self, facts):
        """A tarball's content-addressed name (its key), relative to the
        store."""
        base = os.path.basename(facts.path)
        if isinstance(base, bytes):  # Python 2: a file name as argv gave it
            base = base.decode(sys.getfilesystemencoding() or 'utf-8')
        return u'{0}/{1}/{2}'.format(TARBALL_DIR, facts.sha256[:16], base)

    def tarball_url(self, facts):
        """The catalog's url of a tarball: its name, percent-encoded (a
        "#" or "?" in a file name would otherwise end the URL's path for
        every client), relative to the catalog."""
        return quote_key(self.tarball_name(facts))

    def upload_tarball(self, facts):
        """
        Upload a tarball to its content-addressed key, unless it is there
        already (a republish); True if this call uploaded it.
        """
        name = self.tarball_name(facts)
        present = self.cloud.head_object(self.bucket, self.key(name))
        if present and as_count(present.get('Content-Length')) == facts.size:
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
        if not stored or as_count(stored.get('Content-Length')) != facts.size:
            raise PublishError('the tarball uploaded to {0}{1} is not the '
                               'size of {2}; try again'.format(
                                   self, name, facts.path))
        return True

    def removable_tarball(self, url, still_named):
        """
        The store-relative key of a tarball a catalog entry named, if it may
        be deleted now that no entry names it: keys are compared once
        normalised (``./images/x`` is ``images/x``), and only tarballs under
        images/ go, never the catalog, its signature or its lock.
        """
        key = store_key(url)
        if key is None or key in still_named or \
                key in self.protected_names() or \
                not key.startswith(TARBALL_DIR + '/'):
            return None
        return key
