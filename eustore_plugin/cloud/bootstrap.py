# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Eucalyptus' bootstrap service, which hands out the cloud's certificate to
users who have none configured (as euca2ools 3.4 fetches it).
"""

from __future__ import absolute_import

import atexit
import io
import logging
import os
import tempfile

from requestbuilder.request import AWSQueryRequest
import six

from eustore_plugin.cloud.auth import CloudAuth
from eustore_plugin.cloud.client import Cloud
from eustore_plugin.cloud.services import (CloudError, CloudService,
                                           MissingEndpointError)
from eustore_plugin.suite import EustoreSuite

LOG = logging.getLogger(__name__)


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
    fetches it when none is configured: the path of a private temporary
    file holding it (removed when the command ends), or None when no
    bootstrap service is configured.  Raises CloudError naming the service
    when it cannot be had.
    """
    service = bootstrap_service(command)
    if service is None:
        return None
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
        if isinstance(pem, six.string_types) and '-----BEGIN' in pem:
            LOG.debug('using the cloud certificate from %s',
                      service.endpoint)
            return _private_temporary_file(pem)
    raise CloudError('the bootstrap service at {0} gave no image-bundling '
                     'certificate of the compute service; give the cloud\'s '
                     'certificate with --ec2cert or EUCALYPTUS_CERT'
                     .format(service.endpoint))


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
