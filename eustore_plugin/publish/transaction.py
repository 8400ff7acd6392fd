# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Changing a store's catalog safely: the transaction every publish and
withdrawal goes through.

The order keeps the catalog from ever naming a tarball that is not there:

1. tarballs are uploaded (and checked) before the catalog names them;
2. under the store's lock, the catalog is read, changed, stamped (a serial
   one higher, the time, and a validity if asked; clients refuse an older or
   expired signed catalog), signed, and written back with ``If-Match`` on
   the ETag that was read, then its signature beside it;
3. tarballs the catalog no longer names are deleted only after that.

Conditional writes alone cannot keep two objects -- catalog and signature
-- consistent with each other under concurrent publishers, hence one lock
for the pair, checked to be still this publisher's before each write; the
``If-Match`` on the catalog still catches a publisher that ignored the
lock.  A publisher that finds its lock taken (broken with ``--break-lock``)
after writing the catalog puts the previous one back (if nobody changed it
since) and fails, so the store is not left with a catalog and a signature
that do not match; the signature is written only over the one it saw
(``If-Match``), so one whose lock is taken between its check and its write
fails too instead of overwriting its successor's.
"""

from __future__ import absolute_import

import logging
import time

from eustore_plugin.catalogs.catalog import tarball_keys
from eustore_plugin.cloud.services import CloudError
from eustore_plugin.output import warn
from eustore_plugin.publish.bucket import (LockLostError, PublishError,
                                           bare_etag)
from eustore_plugin.store import openpgp

LOG = logging.getLogger(__name__)

# How many times a catalog write refused by its condition is tried again.
WRITE_ATTEMPTS = 5


class CatalogSigner(object):
    """Signs catalogs with the operator's OpenPGP key (None: gpg's default)."""

    def __init__(self, key_id=None):
        self.key_id = key_id

    def sign(self, document):
        return openpgp.sign_detached(document, key_id=self.key_id)


def change_catalog(store, change, signer=None, break_lock=False,
                   valid_for=None):
    """
    Apply ``change(document, now) -> (new document, info)`` to the store's
    catalog under its lock, sign the result when ``signer`` is given, and
    write both.  ``now`` is the time to stamp the catalog with.  Returns
    (new document, info).  Nothing is left changed when this fails.
    """
    store.lock(break_lock=break_lock)
    try:
        signed = store.has_signature()
        if signed and signer is None:
            raise PublishError(
                'the catalog of {0} is signed; give --sign-key (or set '
                '"eustore-sign-key") so that it stays signed'.format(store))
        for _ in range(WRITE_ATTEMPTS):
            old, etag = store.read_catalog()
            new, info = change(old, time.time())
            signature = signer.sign(new) if signer else None
            store.still_locked()
            written = store.write_catalog(new, etag)
            if written:
                LOG.debug('wrote the catalog of %s (%s)', store,
                          'signed' if signer else 'not signed')
                break
            LOG.debug('the catalog changed under this publisher; reading '
                      'it again')
        else:
            # Each time its ETag had moved (put_if_unchanged): written.
            raise PublishError(
                'the catalog of {0} was changed by another writer {1} times '
                'while this publisher held the store\'s lock: something '
                'writes it without taking the lock'.format(store,
                                                           WRITE_ATTEMPTS))
        try:
            store.still_locked()
            if signer is not None and not store.write_signature(signature):
                # Its lock was taken between the check and the write.
                raise LockLostError(
                    'this publisher\'s lock on {0} was taken (with '
                    '--break-lock?) while it worked: another publisher '
                    'signed the catalog since, so the catalog and '
                    'signature in the store are that one\'s'.format(store))
        except BaseException:
            LOG.debug('could not finish: putting the previous catalog back')
            _restore_catalog(store, old, written)
            raise
    finally:
        try:
            store.unlock()
        except CloudError as err:
            warn('could not release the store\'s lock ({0})'.format(err))
    if signer is None:
        warn('the catalog is not signed, so its users cannot verify it; '
             'give --sign-key to sign it')
    return new, info


def _restore_catalog(store, old, written):
    """
    Put the catalog read back, if the one this publisher wrote is still
    there (``written``: its ETag; True: the store gave none): a
    successor's must not be overwritten.
    """
    try:
        if old is None:
            if written is True or bare_etag(store.etag(store.catalog_name)) \
                    in (bare_etag(written), None):
                store.delete(store.catalog_name)
            else:
                LOG.debug('the catalog changed since; not removed')
        elif written is True:
            store.put_public(store.catalog_name, old, 'application/json')
        elif store.put_if_unchanged(store.catalog_name, old,
                                    'application/json', written) is None:
            LOG.debug('the catalog changed since; not restored')
    except Exception as err:  # the caller reports the first failure
        warn('could not put the previous catalog back ({0})'.format(err))


def remove_tarballs(store, document, urls):
    """Delete the tarballs among ``urls`` the catalog ``document`` no longer
    names, after it changed (see StoreBucket.removable_tarball); returns
    the keys deleted."""
    still_named = tarball_keys(document)
    deleted = []
    for url in urls:
        key = store.removable_tarball(url, still_named)
        if key is None:
            continue
        try:
            store.delete(key)
            LOG.debug('deleted %s%s, which no entry names any more', store,
                      key)
            deleted.append(key)
        except CloudError as err:
            warn('could not delete the tarball {0}{1} no entry names any '
                 'more ({2})'.format(store, key, err))
    return deleted


__all__ = ['CatalogSigner', 'LockLostError', 'PublishError',
           'change_catalog', 'remove_tarballs']
