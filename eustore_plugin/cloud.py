# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The user's cloud, spoken to through requestbuilder: EC2 (register, describe
and deregister images), S3 (buckets and objects), IAM (account aliases) and,
on Eucalyptus, the bootstrap service (the cloud's certificate, when the
user has none).

Endpoints and credentials come from where euca2ools users keep them: command
line options, eucarc variables (EC2_URL, S3_URL, EUARE_URL or AWS_IAM_URL,
AWS_ACCESS_KEY_ID or EC2_ACCESS_KEY, ...) and the euca2ools configuration
(``ec2-url``, ``s3-url``, ``iam-url``, ``key-id``, ``secret-key``).  Requests
are signed with AWS signature version 4 (euca2ools 3.4 signs its EC2
requests so, and its S3 ones with HMAC-V1 unless ``s3-force-sigv4`` is
set).  S3's answers are read as XML with requestbuilder's parser, listings
page by page.
"""

from __future__ import absolute_import

import atexit
import io
import logging
import os
import re
import tempfile
import uuid

from requestbuilder import Arg
from requestbuilder.auth import BaseAuth
from requestbuilder.auth.aws import HmacV4Auth
from requestbuilder.exceptions import AuthError, ClientError
from requestbuilder.request import AWSQueryRequest, BaseRequest
from requestbuilder.service import BaseService
from requestbuilder.xmlparse import parse_aws_xml
import six

from eustore_plugin.backend import EustoreSuite
from eustore_plugin.errors import EustoreError

LOG = logging.getLogger('eustore.cloud')

# What a bucket name may be: S3's length and edge rules, with the
# underscores and capitals older Walrus and us-east-1 buckets have.
_BUCKET_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$')
_IP_RE = re.compile(r'^\d+\.\d+\.\d+\.\d+$')


class CloudError(EustoreError):
    """A cloud service refused a request; ``code`` is its AWS error code."""

    def __init__(self, message, code=None, status_code=None):
        EustoreError.__init__(self, message, status_code)
        self.code = code


class MissingEndpointError(EustoreError):
    """No option, variable or config key names a service's URL."""


def check_bucket_name(name, option='-b/--bucket'):
    """Raise EustoreError naming the rule a bucket name breaks, if any."""
    def refuse(rule):
        raise EustoreError('{0}: "{1}" is not a bucket name: {2}'.format(
            option, name, rule))
    if not 3 <= len(name) <= 63:
        refuse('bucket names have 3 to 63 characters')
    if not _BUCKET_RE.match(name):
        refuse('bucket names hold only letters, digits, dots, hyphens and '
               'underscores, and start and end with a letter or digit')
    if '..' in name:
        refuse('bucket names have no two dots in a row')
    if _IP_RE.match(name):
        refuse('bucket names are not IP addresses')


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
    # S3: <Error>; IAM: <ErrorResponse><Error>; EC2: <Response><Errors>.
    error = child(parsed, 'Error') or \
        child(child(parsed, 'ErrorResponse'), 'Error') or \
        child(child(child(parsed, 'Response'), 'Errors'), 'Error')
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


class _CloudService(BaseService):
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


class EC2(_CloudService):
    NAME = 'ec2'
    DESCRIPTION = 'EC2'
    API_VERSION = '2016-11-15'
    URL_ENVVARS = ('EC2_URL',)
    OPTION = '--ec2-url'


class S3(_CloudService):
    NAME = 's3'
    DESCRIPTION = 'S3'
    URL_ENVVARS = ('S3_URL',)
    OPTION = '--s3-url'


class IAM(_CloudService):
    NAME = 'iam'
    DESCRIPTION = 'IAM'
    API_VERSION = '2010-05-08'
    URL_ENVVARS = ('EUARE_URL', 'AWS_IAM_URL')
    OPTION = '--iam-url'


class Bootstrap(_CloudService):
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


class CloudAuth(HmacV4Auth):
    """
    requestbuilder's SigV4 auth, which also reads eucarc's EC2_ACCESS_KEY and
    EC2_SECRET_KEY, and says everywhere a missing key could come from.
    """

    def configure(self):
        if not (self.args.get('key_id') or self.args.get('secret_key') or
                os.getenv('AWS_ACCESS_KEY_ID') or os.getenv('AWS_ACCESS_KEY')):
            if os.getenv('EC2_ACCESS_KEY') and os.getenv('EC2_SECRET_KEY'):
                self.args['key_id'] = os.getenv('EC2_ACCESS_KEY')
                self.args['secret_key'] = os.getenv('EC2_SECRET_KEY')
        try:
            HmacV4Auth.configure(self)
        except AuthError as err:
            if 'secret' in six.text_type(err):
                what = ('secret key', '-S', 'AWS_SECRET_ACCESS_KEY',
                        'EC2_SECRET_KEY', 'secret-key')
            else:
                what = ('access key ID', '-I', 'AWS_ACCESS_KEY_ID',
                        'EC2_ACCESS_KEY', 'key-id')
            raise AuthError(
                'missing {0}: use {1}, set {2} (or {3}, as a eucarc does), '
                'or set "{4}" in your user\'s euca2ools configuration'
                .format(*what))


class CloudCredentialArgs(BaseAuth):
    """The cloud's access keys; the store itself is read anonymously."""

    ARGS = [Arg('-I', '--access-key-id', dest='key_id', metavar='KEY_ID',
                route_to=None, help='''access key ID for the cloud (default:
                $AWS_ACCESS_KEY_ID, $EC2_ACCESS_KEY, or "key-id" in the
                user's configuration)'''),
            Arg('-S', '--secret-key', dest='secret_key', metavar='KEY',
                route_to=None, help='''secret key for the cloud (default:
                $AWS_SECRET_ACCESS_KEY, $EC2_SECRET_KEY, or "secret-key")'''),
            Arg('--security-token', metavar='TOKEN', route_to=None,
                help='security token for temporary credentials')]


# Options of the commands that speak to the cloud, declared once.
EC2_URL_ARG = Arg('--ec2-url', metavar='URL', route_to=None,
                  help='compute service URL (default: $EC2_URL)')
S3_URL_ARG = Arg('--s3-url', metavar='URL', route_to=None,
                 help='object storage service URL (default: $S3_URL)')
IAM_URL_ARG = Arg('--iam-url', metavar='URL', route_to=None,
                  help='IAM service URL (default: $EUARE_URL)')


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


class DescribeRegions(_EC2Request):
    LIST_TAGS = ['regionInfo']


class ListAccountAliases(AWSQueryRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = IAM
    AUTH_CLASS = CloudAuth
    METHOD = 'POST'
    LIST_TAGS = ['AccountAliases']


class DescribeServiceCertificates(AWSQueryRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = Bootstrap
    AUTH_CLASS = CloudAuth
    METHOD = 'POST'
    LIST_TAGS = ['serviceCertificates']


class _S3Request(BaseRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = S3
    AUTH_CLASS = CloudAuth


class Cloud(object):
    """
    The operations an install needs, on configured services and one auth.
    ``from_command`` builds it from a command's config and options.
    """

    def __init__(self, ec2, s3, iam, auth):
        self.ec2, self.s3, self.iam, self.auth = ec2, s3, iam, auth

    @classmethod
    def from_command(cls, command, ec2_url=None, s3_url=None, iam_url=None,
                     s3_only=False, ec2_only=False):
        """
        The cloud a command's options and config describe; ``s3_only`` for
        commands that only store objects (a store's publisher), which then
        need no EC2 or IAM endpoint; ``ec2_only`` for those that only look
        at images (no S3 or IAM endpoint needed).
        """
        def service(service_cls, url):
            svc = service_cls(command.config, loglevel=command.log.level,
                              url=url, region=command.args.get('region'))
            svc.configure()
            return svc
        s3 = None if ec2_only else service(S3, s3_url)
        ec2 = iam = None
        if not s3_only:
            ec2 = service(EC2, ec2_url)
        if not (s3_only or ec2_only):
            try:
                iam = service(IAM, iam_url)
            except MissingEndpointError:
                iam = None  # the admin check is skipped, with a warning
        auth = CloudAuth(command.config, loglevel=command.log.level,
                         key_id=command.args.get('key_id'),
                         secret_key=command.args.get('secret_key'),
                         security_token=command.args.get('security_token'))
        auth.configure()
        return cls(ec2, s3, iam, auth)

    def _send(self, request_cls, service, params=None, **attrs):
        request = request_cls(service=service, auth=self.auth,
                              config=service.config,
                              loglevel=service.log.level)
        request.params.update(params or {})
        for name, value in attrs.items():
            setattr(request, name, value)
        try:
            return request.main()
        except EustoreError:
            raise
        except ClientError as err:
            # requestbuilder's connection errors and timeouts: say where.
            raise CloudError('cannot reach {0} at {1} ({2})'.format(
                service.DESCRIPTION, service.endpoint, err))

    def identity(self, account_id):
        """Which cloud and account this is (no secrets), for journals."""
        return {'ec2': self.ec2.endpoint if self.ec2 else None,
                's3': self.s3.endpoint, 'account': account_id}

    def check_credentials(self, service):
        """
        A harmless authenticated call to ``service`` (``'ec2'``, ``'s3'``
        or ``'iam'``): its endpoint when the keys are accepted there;
        raises CloudError naming it when they are not.
        """
        if service == 'ec2':
            self._send(DescribeRegions, self.ec2)
            return self.ec2.endpoint
        if service == 's3':
            self._send(_S3Request, self.s3, method='GET', path='')
            return self.s3.endpoint
        if service == 'iam':
            self._send(ListAccountAliases, self.iam)
            return self.iam.endpoint
        raise ValueError(service)

    # EC2 -------------------------------------------------------------------

    def register_image(self, **params):
        return self._send(RegisterImage, self.ec2, params)['imageId']

    def images_named(self, name):
        return self.images_with({'name': name})

    def images_tagged(self, tags):
        """The account's images carrying every tag of ``tags``."""
        return self.images_with(dict(('tag:' + key, value)
                                     for key, value in tags.items()))

    def images_with(self, filters):
        """The account's images matching every filter (name: value)."""
        return self.describe_images(owner='self', filters=dict(
            (name, [value]) for name, value in filters.items()))

    def describe_images(self, owner=None, filters=None):
        """
        The images the cloud shows the account: every owner's it may see,
        or only ``owner``'s ("self": its own), narrowed by ``filters``
        ({name: [values]}) when given (a cloud may ignore them).
        """
        params = {'Owner.1': owner} if owner else {}
        for number, (name, values) in enumerate(sorted(
                (filters or {}).items()), 1):
            params['Filter.{0}.Name'.format(number)] = name
            for index, value in enumerate(values, 1):
                params['Filter.{0}.Value.{1}'.format(number, index)] = value
        return self._send(DescribeImages, self.ec2, params).get(
            'imagesSet') or []

    def create_tags(self, resource_id, tags):
        params = {'ResourceId.1': resource_id}
        for number, (key, value) in enumerate(sorted(tags.items()), 1):
            params['Tag.{0}.Key'.format(number)] = key
            params['Tag.{0}.Value'.format(number)] = value
        self._send(CreateTags, self.ec2, params)

    def deregister_image(self, image_id):
        self._send(DeregisterImage, self.ec2, {'ImageId': image_id})

    # IAM -------------------------------------------------------------------

    def account_aliases(self):
        """The account's aliases, or None when no IAM endpoint is known."""
        if self.iam is None:
            return None
        result = self._send(ListAccountAliases, self.iam)
        return [alias for alias in (result.get('ListAccountAliasesResult', {})
                                    .get('AccountAliases') or [])
                if isinstance(alias, six.string_types)]

    # S3 --------------------------------------------------------------------

    def bucket_exists(self, bucket):
        try:
            self._send(_S3Request, self.s3, method='HEAD', path=bucket)
            return True
        except CloudError as err:
            if err.status_code != 404:
                raise
        return False

    def bucket_status(self, bucket):
        """The status S3 answers a HEAD of the bucket with (200, 403,
        404, ...); raises CloudError when it cannot be reached."""
        try:
            self._send(_S3Request, self.s3, method='HEAD', path=bucket)
            return 200
        except CloudError as err:
            if err.status_code is None:
                raise
            return err.status_code

    def probe_bucket(self, bucket, key_prefix=''):
        """
        Whether an existing bucket takes objects under ``key_prefix``: a
        small private object PUT there and DELETEd again (the one write of
        a dry run).  Returns its key; raises CloudError when refused.
        """
        key = '{0}eustore-dry-run-{1}.probe'.format(key_prefix,
                                                    uuid.uuid4().hex)
        self.put_object(bucket, key, b'eustore dry run probe\n',
                        acl='private')
        self.delete_object(bucket, key)
        return key

    def create_bucket(self, bucket):
        self._send(_S3Request, self.s3, method='PUT', path=bucket)

    def put_object(self, bucket, key, data, acl='aws-exec-read',
                   headers=None):
        """
        Upload bytes or a file object as bucket/key with a canned ACL (and
        any extra ``headers``, e.g. a condition); returns the response.
        """
        return self._send(_S3Request, self.s3, method='PUT',
                          path=bucket + '/' + key,
                          headers=dict(headers or {}, **{'x-amz-acl': acl}),
                          body=data)

    def put_file(self, bucket, key, path, acl='aws-exec-read', headers=None):
        """Upload a file (a bundle part, a tarball) as bucket/key, streamed."""
        with io.open(path, 'rb') as body:
            return self.put_object(bucket, key, body, acl, headers)

    def head_object(self, bucket, key):
        """The object's response headers, or None when there is none."""
        try:
            return self._send(_S3Request, self.s3, method='HEAD',
                              path=bucket + '/' + key).headers
        except CloudError as err:
            if err.status_code != 404:
                raise
        return None

    def delete_object(self, bucket, key):
        self._send(_S3Request, self.s3, method='DELETE',
                   path=bucket + '/' + key)

    def list_keys(self, bucket, prefix=''):
        """Names of the bucket's objects that start with ``prefix``, every
        page of the listing (S3 gives at most 1000 keys a page)."""
        keys, marker = [], None
        while True:
            params = {'prefix': prefix}
            if marker:
                params['marker'] = marker
            listing = parse_xml(self._send(
                _S3Request, self.s3, method='GET', path=bucket,
                params=params).content, ('Contents',))
            result = listing.get('ListBucketResult') or {}
            page = [entry.get('Key') for entry in
                    result.get('Contents') or [] if isinstance(entry, dict)]
            keys.extend(key for key in page
                        if key and key.startswith(prefix))
            if (result.get('IsTruncated') or '').lower() != 'true' or \
                    not page:
                return keys
            marker = result.get('NextMarker') or page[-1]

    def delete_bucket(self, bucket):
        self._send(_S3Request, self.s3, method='DELETE', path=bucket)

    def get_object(self, bucket, key):
        return self._send(_S3Request, self.s3, method='GET',
                          path=bucket + '/' + key).content

    def get_object_if_any(self, bucket, key):
        """(content, ETag) of the object, or (None, None) when missing."""
        try:
            response = self._send(_S3Request, self.s3, method='GET',
                                  path=bucket + '/' + key)
        except CloudError as err:
            if err.status_code == 404:
                return None, None
            raise
        return response.content, response.headers.get('ETag')


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
    certificate when none is configured (see fetch_cloud_certificate).
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
            value = fetch_certificate()
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
