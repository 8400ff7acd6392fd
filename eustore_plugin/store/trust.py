# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The user's trust policy for a store's documents: which OpenPGP keys they
trust (``--trusted-key``, ``eustore-trusted-keys``), whether unsigned
documents are refused (``eustore-require-signature``), accepted quietly
(``eustore-accept-unsigned``) or used with a warning, and freshness: a
signed document must not be older than the one the user had from the same
URL (TUF's rollback attack), nor expired (its freeze attack).

What says how new a signed document is depends on its kind: an eustore
catalog's ``serial``, a simplestreams index's or products file's
``updated`` time, a virt-builder index's template revisions.  It is kept
with the cached copy (cache.py) and compared with the next document from
the same URL: one that went back is refused in one line naming both.
"""

from __future__ import absolute_import

import glob
import logging
import os
import os.path
import time

import six

from eustore_plugin.catalogs.catalog import CatalogError
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

    def check_not_older(self, noun, fetched, freshness, cached, derive):
        """
        Refuse the signed document ``fetched`` (a ``noun``) whose
        ``freshness`` (see :func:`catalog_freshness` and the others) went
        back from that of the copy ``cached`` from the same URL: an attacker
        can replay any document ever signed, and an older one hides newer
        (or withdrawn) images.  ``derive(cached)`` says the copy's freshness
        when it was kept without (by an earlier version).  The new
        freshness is noted on ``fetched``, to be kept with it.
        """
        fetched.freshness = freshness
        if cached is None or cached is fetched:
            return
        before = cached.freshness
        if before is None:
            try:
                before = derive(cached)
            except (StoreError, CatalogError, ValueError):
                return
        back = went_back(freshness, before)
        if back is not None:
            raise StoreError(
                'refusing the {0} at {1}: it is older ({2}) than the one you '
                'had from it on {3} ({4}), so it may be a replayed {0} hiding '
                'newer or withdrawn images; try again later, and tell the '
                'store\'s operator if it persists'.format(
                    noun, fetched.url, back[0], cached.fetched_text, back[1]))

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

    @staticmethod
    def check_expiry(catalog):
        """
        Refuse a signed catalog whose validity ran out: an old catalog
        served forever would hide every fix (TUF's freeze attack).
        """
        if catalog.valid_until is not None and \
                catalog.valid_until < time.time():
            raise StoreError(
                'refusing the catalog at {0}: it expired on {1} (a store '
                'that cannot be updated, or an old catalog served again); '
                'ask the store\'s operator to publish it again'.format(
                    catalog.url, _utc(catalog.valid_until)))


# What a signed document says of its age, by kind: a small dict, kept with
# the cached copy (so it is JSON: text, numbers and dicts of them).

def catalog_freshness(catalog):
    """An eustore catalog's: its serial (None: it has none)."""
    return {'serial': catalog.serial}


def updated_freshness(data):
    """A simplestreams index's or products file's: its "updated" time."""
    updated = data.get('updated') if isinstance(data, dict) else None
    return {'updated': updated if isinstance(updated, six.string_types)
            else None}


def revisions_freshness(entries):
    """A virt-builder index's: the revision of each template (os-version
    id and architecture), where it is a number."""
    return {'revisions': dict(
        (u'[{0}] {1}'.format(entry.section, entry.arch or u'').strip(),
         entry.revision) for entry in entries
        if isinstance(entry.revision, six.integer_types))}


def went_back(now, before):
    """
    Whether the freshness ``now`` is older than ``before``: None, or what
    went back in each, as text.  A serial or time that is gone where there
    was one counts as going back; so does any template's revision.
    """
    if isinstance(before.get('serial'), six.integer_types):
        serial = now.get('serial')
        if not isinstance(serial, six.integer_types) or \
                serial < before['serial']:
            return ('serial {0}'.format(serial if serial is not None
                                        else 'none'),
                    'serial {0}'.format(before['serial']))
    earlier = parse_rfc2822(before.get('updated'))
    if earlier is not None:
        updated = parse_rfc2822(now.get('updated'))
        if updated is None or updated < earlier:
            return ('updated {0}'.format(now.get('updated') or 'never'),
                    'updated {0}'.format(before['updated']))
    revisions = now.get('revisions') or {}
    for template, revision in sorted((before.get('revisions') or {})
                                     .items()):
        if isinstance(revision, six.integer_types) and \
                isinstance(revisions.get(template), six.integer_types) and \
                revisions[template] < revision:
            return ('{0} at revision {1}'.format(template,
                                                 revisions[template]),
                    'revision {0}'.format(revision))
    return None


def _utc(timestamp):
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(timestamp))
