# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What bundling needs besides the image (the user's certificate and private
key, the cloud's certificate, the account id), and every place each may
be set, in the order euca2ools users expect.
"""

from __future__ import absolute_import

import os

from requestbuilder.exceptions import ClientError


class BundleCredentials(object):
    """What bundling needs besides the image: certificates, key, account;
    and, when the cloud's certificate came from the bootstrap service, its
    SHA-256 fingerprint and that service's URL."""

    def __init__(self, certificate, private_key, cloud_certificate,
                 account_id, cloud_certificate_fingerprint=None,
                 cloud_certificate_url=None):
        self.certificate = certificate
        self.private_key = private_key
        self.cloud_certificate = cloud_certificate
        self.account_id = account_id
        self.cloud_certificate_fingerprint = cloud_certificate_fingerprint
        self.cloud_certificate_url = cloud_certificate_url

    def fetched_certificate(self):
        """What --json says of a cloud certificate the bootstrap service
        gave (its fingerprint and the service's URL), or None."""
        if not self.cloud_certificate_fingerprint:
            return None
        return {'fingerprint': self.cloud_certificate_fingerprint,
                'url': self.cloud_certificate_url}


# Where each thing bundling needs may come from, in order: the option (its
# dest and how it is spelt), eucarc's variables, then the euca2ools config
# (user or region section, and key).
_BUNDLE_SOURCES = (
    ('certificate', 'cert', '-c/--cert', ('EC2_CERT',),
     ('user', 'certificate'), 'your X.509 certificate'),
    ('private_key', 'privatekey', '--privatekey', ('EC2_PRIVATE_KEY',),
     ('user', 'private-key'), 'your private key'),
    ('cloud_certificate', 'ec2cert', '--ec2cert', ('EUCALYPTUS_CERT',),
     ('region', 'certificate'), "the cloud's certificate"),
    ('account_id', 'user', '-u/--user', ('EC2_USER_ID',),
     ('user', 'account-id'), 'your account ID'),
)


def find_bundle_credentials(args, config, fetch_certificate=None):
    """
    The certificates, key and account id bundling needs, as a dict; raises
    ClientError naming, for each missing one, every place it could be set.
    ``fetch_certificate()``, when given, is asked for the cloud's
    certificate when none is configured (see fetch_cloud_certificate): its
    fingerprint and URL are then ``cloud_certificate_fingerprint`` and
    ``cloud_certificate_url``.
    """
    found, missing = {}, []
    for name, dest, option, variables, (scope, key), what in _BUNDLE_SOURCES:
        value = args.get(dest)
        for variable in variables:
            value = value or os.getenv(variable)
        if not value:
            if scope == 'user':
                value = config.get_user_option(key)
            else:
                value = config.get_region_option(key)
        if not value and name == 'cloud_certificate' and fetch_certificate:
            fetched = fetch_certificate()
            value = getattr(fetched, 'path', fetched)
            if value:
                found['cloud_certificate_fingerprint'] = getattr(
                    fetched, 'fingerprint', None)
                found['cloud_certificate_url'] = getattr(fetched, 'url',
                                                         None)
        if not value:
            missing.append('{0} ({1}, {2}, or "{3}" in the {4}\'s euca2ools '
                           'configuration{5})'.format(
                               what, option, ' or '.join(variables), key,
                               scope, ', or a bootstrap service to fetch it '
                               'from: "bootstrap-url" or EUCA_BOOTSTRAP_URL'
                               if name == 'cloud_certificate' else ''))
            continue
        if name == 'account_id':
            value = value.replace('-', '').strip()
        else:
            value = os.path.expanduser(os.path.expandvars(value))
        found[name] = value
    if missing:
        raise ClientError('bundling needs ' + '; '.join(missing))
    return found
