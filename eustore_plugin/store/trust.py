# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The user's trust policy for a store's documents: which OpenPGP keys they
trust (``--trusted-key``, ``eustore-trusted-keys``), whether unsigned
documents are refused (``eustore-require-signature``), accepted quietly
(``eustore-accept-unsigned``) or used with a warning, and freshness: a
signed document must not be older than the one the user had from the same
URL (TUF's rollback attack), nor expired (its freeze attack).
"""

from __future__ import absolute_import

import glob
import logging
import os
import os.path
import time

from eustore_plugin.catalogs.catalog import Catalog, CatalogError, load_json
from eustore_plugin.output import warn
from eustore_plugin.store import openpgp
from eustore_plugin.store.kinds import parse_rfc2822
from eustore_plugin.store.service import StoreError, store_option

LOG = logging.getLogger(__name__)

# A catalog's detached OpenPGP signature is its URL plus this.
SIGNATURE_SUFFIX = '.asc'


class TrustPolicy(object):
    """What the user's options and configuration say to trust."""

    def __init__(self, config, trusted_keys=None):
        self.config = config
        self.trusted_keys = trusted_keys

    def clearsigned(self, fetched, noun):
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

    def check_products_updated(self, fetched, products, cached):
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
