# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What a publisher's ``--dry-run`` checks (publish and withdraw share it):
the store's endpoint and keys, its bucket writable (a probe object put and
deleted: the one write) or creatable, its lock free, its catalog read and
parsed, the change tried on it, and the signing key.  Each outcome goes
into a DryRun (dryrun.py), which lists them all.
"""

from __future__ import absolute_import

from eustore_plugin.catalogs.catalog import tarball_keys
from eustore_plugin.cloud.client import check_bucket
from eustore_plugin.dryrun import bucket_detail
from eustore_plugin.errors import EustoreError


def check_store(run, open_store, break_lock=False, create=True):
    """
    The store's side of a dry run, the conditional writes the catalog
    needs tried on the probe object.  Returns (store, whether its bucket
    exists), or (None, None) when it cannot be looked at.
    """
    store = run.attempt('store', open_store,
                        detail=lambda store: u'{0} at {1}'.format(
                            store, store.cloud.s3.endpoint))
    if store is None or not run.attempt(
            'credentials', store.cloud.check_credentials, 's3',
            detail=lambda url: 'accepted by S3 at {0}'.format(url)):
        return None, None
    exists = run.attempt('bucket', check_bucket, store.cloud, store.bucket,
                         store.prefix, create=create,
                         while_probed=store.try_conditions,
                         detail=lambda exists: bucket_detail(
                             exists, store.bucket, store.prefix))
    if store.conditions:
        run.passed('conditions', store.conditions)
    if not exists:
        if exists is False:
            run.would(u'Would create bucket {0}'.format(store.bucket))
        return store, exists

    def lock_detail(holder):
        if not holder:
            return 'free'
        if break_lock:
            return u'held by {0}; --break-lock would break it'.format(holder)
        raise EustoreError(u'the store {0} is being changed by {1}; if that '
                           u'publisher is gone, run again with --break-lock'
                           .format(store, holder))
    run.attempt('lock', store.lock_state, detail=lock_detail)
    return store, exists


def check_signer(run, signer):
    """Whether the signing key signs (when there is one)."""
    if signer is not None:
        run.attempt('signing', signer.sign, b'',
                    detail=lambda _: u'key {0} signs'.format(signer.key_id))


def check_catalog(run, store, exists, change, signer):
    """
    The store's catalog read and parsed, and ``change(document)`` -> (new
    document, info) tried on it; whether a signed catalog would stay
    signed.  Returns what ``change`` returned, or None when something
    failed (the caller says what the change is, and adds the step that
    writes the catalog: :func:`write_step`).
    """
    check_signer(run, signer)
    document = None
    if exists:
        read = run.attempt('catalog', store.read_catalog,
                           detail=lambda read: u'{0}{1}: {2} bytes'.format(
                               store, store.catalog_name, len(read[0]))
                           if read[0] is not None else 'none yet: a new store')
        if read is None:
            return None
        document = read[0]
        if run.attempt('catalog', tarball_keys, document, quiet=True) is None:
            return None
        signed = run.attempt('signing', store.has_signature,
                             detail=lambda signed: 'the catalog is {0}'
                             .format('signed' if signed else 'not signed'))
        if signed and signer is None:
            run.failed('signing', u'the catalog of {0} is signed; give '
                       u'--sign-key (or set "eustore-sign-key") so that it '
                       u'stays signed'.format(store))
    return run.attempt('entry', change, document, quiet=True)


def write_step(signer):
    """The step that writes the catalog."""
    return u'Would write the catalog {0}'.format(
        'signed with key {0}'.format(signer.key_id) if signer
        else 'unsigned')


def purge_steps(store, purge_urls):
    """The steps that purge the caches in front of the store."""
    return [u'Would purge {0} from {1}'.format(
        ' and '.join([store.catalog_name, store.signature_name]), url)
        for url in purge_urls or ()]
