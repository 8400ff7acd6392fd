# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The user's cloud services as requestbuilder services, and the requests the
plugin sends them: EC2 (register, describe, tag and deregister images;
describe and delete snapshots), S3
(buckets and objects, sent through :class:`S3Request`) and IAM (account
aliases).  Each service's endpoint is found the way euca2ools finds it: an
option, eucarc's variable, then the region's ``<service>-url`` option.
A refused request is a :class:`CloudError` naming the service, its URL,
the status and AWS's code and message.
"""

from __future__ import absolute_import

import io
import os

from requestbuilder.request import AWSQueryRequest, BaseRequest
from requestbuilder.service import BaseService
from requestbuilder.xmlparse import parse_aws_xml
import six

from eustore_plugin.cloud.auth import CloudAuth
from eustore_plugin.errors import EustoreError
from eustore_plugin.suite import EustoreSuite


class CloudError(EustoreError):
    """A cloud service refused a request; ``code`` is its AWS error code."""

    def __init__(self, message, code=None, status_code=None):
        EustoreError.__init__(self, message, status_code)
        self.code = code


class AclRefusedError(CloudError):
    """The S3 does not take a canned ACL (``acl``) it was asked for."""

    def __init__(self, message, code=None, status_code=None, acl=None):
        CloudError.__init__(self, message, code, status_code)
        self.acl = acl


# How S3s refuse a canned ACL they do not know: Ceph RGW and AWS with 400
# InvalidArgument, servers that leave ACLs out with 501 NotImplemented.
_ACL_REFUSALS = ((400, 'InvalidArgument'), (501, 'NotImplemented'))


def refuses_acl(err, acl):
    """Whether the CloudError of a PUT made with the canned ``acl`` is a
    refusal of that ACL: "private", every S3's own, is never the cause."""
    return acl != 'private' and (err.status_code, err.code) in _ACL_REFUSALS


class MissingEndpointError(EustoreError):
    """No option, variable or config key names a service's URL."""


def parse_xml(content, list_tags=()):
    """An AWS XML answer as nested dicts (requestbuilder's parser), or {}
    for what is not XML (an HTML error page, nothing)."""
    try:
        return parse_aws_xml(io.BytesIO(content or b''),
                             list_item_tags=list_tags)
    except Exception:  # a proxy's HTML page, a cut body: no details
        return {}


def error_from_response(service, response):
    """The CloudError of a refused request: the service and its URL, the
    status, AWS's code and message where the body has them."""
    def child(node, name):
        value = node.get(name) if isinstance(node, dict) else None
        return value[0] if isinstance(value, list) and value else value

    parsed = parse_xml(response.content)
    # S3: <Error>; IAM: <ErrorResponse><Error>; EC2: <Response><Errors>;
    # moto's refusal of keys for JSON services: <ErrorResponse><Errors>.
    error = child(parsed, 'Error') or \
        child(child(parsed, 'ErrorResponse'), 'Error') or \
        child(child(child(parsed, 'Response'), 'Errors'), 'Error') or \
        child(child(child(parsed, 'ErrorResponse'), 'Errors'), 'Error')
    if not isinstance(error, dict):
        error = {}
    code = error.get('Code') if isinstance(error.get('Code'),
                                           six.string_types) else None
    text = error.get('Message')
    text = ' '.join(text.split()) if isinstance(text, six.string_types) \
        else response.reason
    return CloudError('{0} at {1} refused the request ({2} {3}{4})'.format(
        service.DESCRIPTION, service.endpoint, response.status_code,
        code + ': ' if code else '', text or ''),
        code=code, status_code=response.status_code)


class CloudService(BaseService):
    """An endpoint of the user's cloud, found the way euca2ools finds it."""

    URL_ENVVARS = ()  # the first is also requestbuilder's URL_ENVVAR
    REGION_ENVVAR = ('EUCA_DEFAULT_REGION', 'AWS_DEFAULT_REGION')
    OPTION = None  # the command line option that sets this URL

    @property
    def URL_ENVVAR(self):
        return self.URL_ENVVARS[0] if self.URL_ENVVARS else None

    def configure(self):
        if not self.args.get('url'):
            for variable in self.URL_ENVVARS:
                if os.getenv(variable):
                    self.args['url'] = os.getenv(variable)
                    break
        BaseService.configure(self)
        if self.region_name is None:
            # SigV4 needs a region.  Eucalyptus accepts any name, so like
            # euca2ools fall back to the configured region or a made-up one.
            self.region_name = (os.getenv('AWS_AUTH_REGION') or
                                self.config.region or
                                'undefined-{0}'.format(os.getpid()))

    def validate_config(self):
        if self.endpoint is None:
            raise MissingEndpointError(
                'no {0} endpoint: use {1}, set {2}, or set "{3}-url" in the '
                'region\'s euca2ools configuration (and choose the region '
                'with --region)'.format(self.DESCRIPTION, self.OPTION,
                                        ' or '.join(self.URL_ENVVARS),
                                        self.NAME))

    def handle_http_error(self, response):
        raise error_from_response(self, response)

    def drop_connections(self):
        """Close the connections kept alive to the service (new ones are
        opened as needed): after refusing a canned ACL, Ceph RGW was seen
        leaving the next request on the same connection unanswered until
        the read timeout, and what follows a refusal is often a
        rollback."""
        self.session.close()


class EC2(CloudService):
    NAME = 'ec2'
    DESCRIPTION = 'EC2'
    API_VERSION = '2016-11-15'
    URL_ENVVARS = ('EC2_URL',)
    OPTION = '--ec2-url'


class S3(CloudService):
    NAME = 's3'
    DESCRIPTION = 'S3'
    URL_ENVVARS = ('S3_URL',)
    OPTION = '--s3-url'


class IAM(CloudService):
    NAME = 'iam'
    DESCRIPTION = 'IAM'
    API_VERSION = '2010-05-08'
    URL_ENVVARS = ('EUARE_URL', 'AWS_IAM_URL')
    OPTION = '--iam-url'


class _EC2Request(AWSQueryRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = EC2
    AUTH_CLASS = CloudAuth
    METHOD = 'POST'


class RegisterImage(_EC2Request):
    pass


class DescribeImages(_EC2Request):
    LIST_TAGS = ['imagesSet', 'blockDeviceMapping', 'productCodes', 'tagSet']


class DeregisterImage(_EC2Request):
    pass


class CreateTags(_EC2Request):
    pass


class DescribeSnapshots(_EC2Request):
    LIST_TAGS = ['snapshotSet', 'tagSet']


class DeleteSnapshot(_EC2Request):
    pass


class DescribeRegions(_EC2Request):
    LIST_TAGS = ['regionInfo']


class ListAccountAliases(AWSQueryRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = IAM
    AUTH_CLASS = CloudAuth
    METHOD = 'POST'
    LIST_TAGS = ['AccountAliases']


class S3Request(BaseRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = S3
    AUTH_CLASS = CloudAuth
