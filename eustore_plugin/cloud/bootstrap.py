# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Eucalyptus' bootstrap service, which hands out the cloud's certificate to
users who have none configured (as euca2ools 3.4 fetches it).

Every bundle's key is encrypted to that certificate, so whoever answers the
request chooses who can read the images (docs/threat-model.md, "the
cloud's certificate"): over https it is the service the user named; over
plain http, anyone on the way.  A plain-http fetch is said in a warning
naming the URL and the certificate's fingerprint, and refused when the
configuration's "eustore-require-https-bootstrap" is true; the SHA-256
fingerprint of what was used is logged (--debug) and returned to the
caller.
"""

from __future__ import absolute_import

import atexit
import base64
import binascii
import collections
import hashlib
import io
import logging
import os
import re
import tempfile

from requestbuilder.request import AWSQueryRequest
import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.cloud.auth import CloudAuth
from eustore_plugin.cloud.client import Cloud
from eustore_plugin.cloud.services import (CloudError, CloudService,
                                           MissingEndpointError)
from eustore_plugin.output import warn
from eustore_plugin.suite import EustoreSuite

LOG = logging.getLogger(__name__)

REQUIRE_HTTPS_OPTION = 'eustore-require-https-bootstrap'
_PEM_CERTIFICATE_RE = re.compile(
    r'-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----', re.S)


class CloudCertificate(collections.namedtuple('CloudCertificate',
                                              'path fingerprint url')):
    """
    The cloud's certificate as the bootstrap service gave it: the private
    temporary file holding it, its SHA-256 fingerprint (colon-separated
    hex, as ``openssl x509 -fingerprint -sha256`` shows it) and the URL it
    came from.
    """
    __slots__ = ()


class Bootstrap(CloudService):
    """
    Eucalyptus' bootstrap service ("empyrean"), which hands out the cloud's
    service certificates; found, as euca2ools finds it, from the region's
    ``bootstrap-url`` option or EUCA_BOOTSTRAP_URL.
    """
    NAME = 'bootstrap'
    DESCRIPTION = 'the bootstrap service'
    API_VERSION = 'eucalyptus'
    URL_ENVVARS = ('EUCA_BOOTSTRAP_URL',)
    OPTION = 'bootstrap-url'


class DescribeServiceCertificates(AWSQueryRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = Bootstrap
    AUTH_CLASS = CloudAuth
    METHOD = 'POST'
    LIST_TAGS = ['serviceCertificates']


# What the bootstrap service is asked for, and which of its certificates
# bundles are encrypted for.
_CERTIFICATE_PARAMS = {'Format': 'pem', 'FingerprintDigest': 'SHA-256'}
_BUNDLING_CERTIFICATE = {'certificateUsage': 'image-bundling',
                         'serviceType': 'compute'}


def bootstrap_service(command):
    """The bootstrap service the command's configuration names, or None."""
    service = Bootstrap(command.config, loglevel=command.log.level,
                        region=command.args.get('region'))
    try:
        service.configure()
    except MissingEndpointError:
        return None
    return service


def fetch_cloud_certificate(command):
    """
    The cloud's certificate from the bootstrap service, as euca2ools 3.4
    fetches it when none is configured: a :class:`CloudCertificate` (its
    file is removed when the command ends), or None when no bootstrap
    service is configured.  Raises CloudError naming the service when it
    cannot be had, or may not be over plain http.
    """
    service = bootstrap_service(command)
    if service is None:
        return None
    plain = urlparse.urlparse(service.endpoint).scheme.lower() != 'https'
    if plain and _requires_https(command.config):
        raise CloudError(
            'refusing to fetch the cloud\'s certificate over plain http from '
            '{0} ("{1}" is set): use an https bootstrap-url, or give the '
            'certificate with --ec2cert or EUCALYPTUS_CERT'.format(
                service.endpoint, REQUIRE_HTTPS_OPTION))
    auth = CloudAuth(command.config, loglevel=command.log.level,
                     key_id=command.args.get('key_id'),
                     secret_key=command.args.get('secret_key'),
                     security_token=command.args.get('security_token'))
    auth.configure()
    cloud = Cloud(None, None, None, auth)
    try:
        result = cloud._send(DescribeServiceCertificates, service,
                             dict(_CERTIFICATE_PARAMS))
    except CloudError as err:
        hint = ('; the account needs the IAM permission '
                '"euserv:DescribeServiceCertificates"'
                if err.status_code == 403 else '')
        raise CloudError('cannot fetch the cloud\'s certificate: {0}{1}; or '
                         'give it with --ec2cert or EUCALYPTUS_CERT'
                         .format(err, hint), code=err.code,
                         status_code=err.status_code)
    except Exception as err:  # an answer that is not the XML asked for
        raise CloudError('cannot fetch the cloud\'s certificate: the '
                         'bootstrap service at {0} answered what is not a '
                         'list of certificates ({1}); give it with --ec2cert '
                         'or EUCALYPTUS_CERT'.format(service.endpoint, err))
    if not isinstance(result, dict):
        result = {}
    for member in result.get('serviceCertificates') or []:
        if not isinstance(member, dict) or any(
                member.get(key) != value
                for key, value in _BUNDLING_CERTIFICATE.items()):
            continue
        pem = member.get('certificate')
        fingerprint = certificate_fingerprint(pem)
        if fingerprint is None:
            continue
        LOG.debug('using the cloud certificate from %s, SHA-256 '
                  'fingerprint %s', service.endpoint, fingerprint)
        if plain:
            warn('the cloud\'s certificate (SHA-256 {0}) came over plain '
                 'http from {1}, so anyone on the way could have chosen it; '
                 'use an https bootstrap-url, or give it with --ec2cert '
                 '(set "{2}" to refuse)'.format(
                     fingerprint, service.endpoint, REQUIRE_HTTPS_OPTION))
        return CloudCertificate(_private_temporary_file(pem), fingerprint,
                                service.endpoint)
    raise CloudError('the bootstrap service at {0} gave no image-bundling '
                     'certificate of the compute service; give the cloud\'s '
                     'certificate with --ec2cert or EUCALYPTUS_CERT'
                     .format(service.endpoint))


def certificate_fingerprint(pem):
    """The SHA-256 fingerprint of the first certificate in the PEM text
    ``pem``, or None when there is none."""
    if not isinstance(pem, six.string_types):
        return None
    match = _PEM_CERTIFICATE_RE.search(pem)
    if match is None:
        return None
    try:
        der = base64.b64decode(''.join(match.group(1).split()))
    except (TypeError, ValueError, binascii.Error):
        return None
    if not der:
        return None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ':'.join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _requires_https(config):
    value = config.get_region_option(REQUIRE_HTTPS_OPTION)
    if value is None:
        value = config.get_global_option(REQUIRE_HTTPS_OPTION)
    return config.convert_to_bool(value, default=False)


def _private_temporary_file(text):
    """``text`` in a file only this user can read, removed at exit."""
    descriptor, path = tempfile.mkstemp(prefix='eustore-cloud-cert-',
                                        suffix='.pem')
    with io.open(descriptor, 'wb') as out:
        out.write(text.encode('ascii', 'replace')
                  if isinstance(text, six.text_type) else text)
    atexit.register(_remove_quietly, path)
    return path


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
