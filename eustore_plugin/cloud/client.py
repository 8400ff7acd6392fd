# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The user's cloud as one object: the operations the commands need on its
EC2, S3 and IAM services (services.py), signed with one set of keys
(auth.py); its EBS direct APIs (ebs.py) are sent through it too.
Requests are signed with AWS signature version 4 (euca2ools 3.4 signs its
EC2 requests so, and its S3 ones with HMAC-V1 unless ``s3-force-sigv4`` is
set).  S3's answers are read as XML with requestbuilder's parser, listings
page by page.
"""

from __future__ import absolute_import

import io
import logging
import re
import uuid

from requestbuilder.exceptions import ClientError
import six

from eustore_plugin.cloud.auth import CloudAuth
from eustore_plugin.cloud.services import (EC2, IAM, S3, AclRefusedError,
                                           CloudError, CreateTags,
                                           DeleteSnapshot, DeregisterImage,
                                           DescribeImages, DescribeRegions,
                                           DescribeSnapshots,
                                           ListAccountAliases,
                                           MissingEndpointError, RegisterImage,
                                           S3Request, parse_xml, refuses_acl)
from eustore_plugin.errors import EustoreError
from eustore_plugin.urlkeys import s3_path

LOG = logging.getLogger(__name__)

# The account of a Eucalyptus cloud's administrator, the only one allowed to
# register (and deregister) kernels and ramdisks.
ADMIN_ALIAS = 'eucalyptus'

# The canned ACL of an uploaded bundle: its owner's, and read access for the
# cloud's own services, which is how Eucalyptus and EC2 read a bundle they
# register.  Not every S3 knows it (Ceph RGW does not): see AclRefusedError.
BUNDLE_ACL = 'aws-exec-read'
# What a dry run's probe object holds.
PROBE_BODY = b'eustore dry run probe\n'

# What a bucket name may be: S3's length and edge rules, with the
# underscores and capitals older Walrus and us-east-1 buckets have.
_BUCKET_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$')
_IP_RE = re.compile(r'^\d+\.\d+\.\d+\.\d+$')


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


class Cloud(object):
    """
    The operations an install needs, on configured services and one auth.
    ``from_command`` builds it from a command's config and options.
    """

    def __init__(self, ec2, s3, iam, auth):
        self.ec2, self.s3, self.iam, self.auth = ec2, s3, iam, auth

    @classmethod
    def from_command(cls, command, ec2_url=None, s3_url=None, iam_url=None,
                     s3_only=False, ec2_only=False, s3_optional=False):
        """
        The cloud a command's options and config describe; ``s3_only`` for
        commands that only store objects (a store's publisher), which then
        need no EC2 or IAM endpoint; ``ec2_only`` for those that only look
        at images (no S3 or IAM endpoint needed); ``s3_optional`` for those
        that need S3 only for some images (bundles), and do without it.
        """
        def service(service_cls, url):
            svc = service_cls(command.config, loglevel=command.log.level,
                              url=url, region=command.args.get('region'))
            svc.configure()
            return svc
        s3 = None
        if not ec2_only:
            try:
                s3 = service(S3, s3_url)
            except MissingEndpointError:
                if not s3_optional:
                    raise
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
                's3': self.s3.endpoint if self.s3 else None,
                'account': account_id}

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
            self._send(S3Request, self.s3, method='GET', path='')
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
        params.update(_filter_params(filters))
        return self._send(DescribeImages, self.ec2, params).get(
            'imagesSet') or []

    def describe_snapshots(self, snapshot_ids=(), owner=None, filters=None):
        """
        The snapshots ``snapshot_ids`` (all the account may see when none
        are given), or only ``owner``'s ("self"), narrowed by
        ``filters`` as describe_images' are.  Raises CloudError with the
        code InvalidSnapshot.NotFound when one of the ids is not there.
        """
        params = dict(('SnapshotId.{0}'.format(number), snapshot_id)
                      for number, snapshot_id in enumerate(snapshot_ids, 1))
        if owner:
            params['Owner.1'] = owner
        params.update(_filter_params(filters))
        return self._send(DescribeSnapshots, self.ec2, params).get(
            'snapshotSet') or []

    def delete_snapshot(self, snapshot_id):
        self._send(DeleteSnapshot, self.ec2, {'SnapshotId': snapshot_id})

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
            self._send(S3Request, self.s3, method='HEAD', path=s3_path(bucket))
            return True
        except CloudError as err:
            if err.status_code != 404:
                raise
        return False

    def bucket_status(self, bucket):
        """The status S3 answers a HEAD of the bucket with (200, 403,
        404, ...); raises CloudError when it cannot be reached."""
        try:
            self._send(S3Request, self.s3, method='HEAD', path=s3_path(bucket))
            return 200
        except CloudError as err:
            if err.status_code is None:
                raise
            return err.status_code

    def probe_bucket(self, bucket, key_prefix='', acl='private',
                     while_there=None):
        """
        Whether an existing bucket takes objects under ``key_prefix`` with
        the canned ``acl``: a small object (PROBE_BODY) PUT there and
        DELETEd again (the one write of a dry run); ``while_there(key,
        etag)``, if given, is called between the two.  Returns its key;
        raises CloudError when refused (AclRefusedError: the ACL).
        """
        key = '{0}eustore-dry-run-{1}.probe'.format(key_prefix,
                                                    uuid.uuid4().hex)
        response = self.put_object(bucket, key, PROBE_BODY, acl=acl)
        try:
            if while_there is not None:
                while_there(key, response.headers.get('ETag'))
        finally:
            self.delete_object(bucket, key)
        return key

    def create_bucket(self, bucket):
        self._send(S3Request, self.s3, method='PUT', path=s3_path(bucket))

    def put_object(self, bucket, key, data, acl=BUNDLE_ACL, headers=None):
        """
        Upload bytes or a file object as bucket/key with a canned ACL (and
        any extra ``headers``, e.g. a condition); returns the response.
        Raises AclRefusedError when the S3 does not take the ACL.
        """
        try:
            return self._send(S3Request, self.s3, method='PUT',
                              path=s3_path(bucket, key),
                              headers=dict(headers or {},
                                           **{'x-amz-acl': acl}),
                              body=data)
        except CloudError as err:
            if not refuses_acl(err, acl):
                raise
            self.s3.drop_connections()
            raise AclRefusedError(
                'S3 at {0} does not take the canned ACL "{1}" (it answered '
                '{2} {3} to {4}/{5}): choose one it takes with --acl'.format(
                    self.s3.endpoint, acl, err.status_code, err.code,
                    bucket, key), code=err.code,
                status_code=err.status_code, acl=acl)

    def put_file(self, bucket, key, path, acl=BUNDLE_ACL, headers=None):
        """Upload a file (a bundle part, a tarball) as bucket/key, streamed."""
        with io.open(path, 'rb') as body:
            return self.put_object(bucket, key, body, acl, headers)

    def head_object(self, bucket, key):
        """The object's response headers, or None when there is none."""
        try:
            return self._send(S3Request, self.s3, method='HEAD',
                              path=s3_path(bucket, key)).headers
        except CloudError as err:
            if err.status_code != 404:
                raise
        return None

    def delete_object(self, bucket, key):
        self._send(S3Request, self.s3, method='DELETE',
                   path=s3_path(bucket, key))

    def list_keys(self, bucket, prefix=''):
        """Names of the bucket's objects that start with ``prefix``, every
        page of the listing (S3 gives at most 1000 keys a page)."""
        keys, marker = [], None
        while True:
            params = {'prefix': prefix}
            if marker:
                params['marker'] = marker
            listing = parse_xml(self._send(
                S3Request, self.s3, method='GET',
                path=s3_path(bucket, params=params)).content, ('Contents',))
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
        self._send(S3Request, self.s3, method='DELETE', path=s3_path(bucket))

    def get_object(self, bucket, key):
        return self._send(S3Request, self.s3, method='GET',
                          path=s3_path(bucket, key)).content

    def get_object_if_any(self, bucket, key):
        """(content, ETag) of the object, or (None, None) when missing."""
        try:
            response = self._send(S3Request, self.s3, method='GET',
                                  path=s3_path(bucket, key))
        except CloudError as err:
            if err.status_code == 404:
                return None, None
            raise
        return response.content, response.headers.get('ETag')


def _filter_params(filters):
    """EC2's Filter.N.Name and Filter.N.Value.M of {name: [values]}."""
    params = {}
    for number, (name, values) in enumerate(sorted(
            (filters or {}).items()), 1):
        params['Filter.{0}.Name'.format(number)] = name
        for index, value in enumerate(values, 1):
            params['Filter.{0}.Value.{1}'.format(number, index)] = value
    return params


def check_bucket(cloud, bucket, key_prefix='', create=True,
                 option='-b/--bucket', acl='private', while_probed=None):
    """
    Whether ``bucket`` can take what a command would write there: an
    existing one is written to (a probe object under ``key_prefix``, with
    the canned ``acl`` the command's objects get, put and deleted again;
    ``while_probed(key, etag)`` is called in between); a missing one must
    have a valid name and answer 404 (a 403 is somebody else's), and be
    creatable (``create``).  Returns True when it exists, False when it
    would be created; raises EustoreError saying what is wrong (the
    AclRefusedError itself for an ACL the S3 does not take).
    """
    check_bucket_name(bucket, option)
    status = cloud.bucket_status(bucket)
    if status == 200:
        try:
            cloud.probe_bucket(bucket, key_prefix, acl, while_probed)
        except AclRefusedError:
            raise
        except CloudError as err:
            raise EustoreError('the bucket {0} exists, but refused a probe '
                               'object under "{1}": {2}'.format(
                                   bucket, key_prefix, err),
                               err.status_code)
        return True
    if status == 404:
        if not create:
            raise EustoreError('there is no bucket {0} at {1}'.format(
                bucket, cloud.s3.endpoint), 404)
        return False
    if status == 403:
        raise EustoreError(
            'the bucket {0} exists but you may not use it (S3 at {1} answered '
            '403 to a HEAD of it): it is somebody else\'s, or your policy '
            'forbids it; choose another bucket'.format(bucket,
                                                       cloud.s3.endpoint),
            403)
    raise EustoreError('S3 at {0} answered {1} to a HEAD of the bucket {2}'
                       .format(cloud.s3.endpoint, status, bucket), status)
