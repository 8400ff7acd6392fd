# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The EBS direct APIs, which write a new EBS snapshot block by block:
StartSnapshot, PutSnapshotBlock and CompleteSnapshot, REST with JSON
bodies, signed with SigV4 for the service ``ebs``, sent through
requestbuilder like the cloud's other services (services.py).

The endpoint is found the euca2ools way: --ebs-url, EBS_URL, the region's
``ebs-url``, and else, when EC2's URL is AWS's, AWS's EBS endpoint of the
same region.  A cloud without these APIs (Eucalyptus has none) has no
endpoint, or answers what is not them: :class:`NoEbsDirectError` says so
in one line, and what to do instead.
"""

from __future__ import absolute_import

import json
import logging
import re

from requestbuilder.request import BaseRequest
import requests
import requests.adapters
import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.cloud.auth import CloudAuth
from eustore_plugin.cloud.services import (CloudError, CloudService,
                                           MissingEndpointError,
                                           error_from_response)
from eustore_plugin.suite import EustoreSuite

LOG = logging.getLogger(__name__)

# The size of every block the APIs take (moto's StartSnapshot says 512).
BLOCK_SIZE = 512 * 1024
# What a volume may be, in GiB.
MAX_VOLUME_SIZE = 65536
# The snapshot the access check completes: one that cannot exist (ids are
# random hex), so completing it changes nothing.
PROBE_SNAPSHOT = 'snap-00000000000000000'
# What the APIs answer (after authorising the call) for a snapshot that is
# not there, or an argument they refuse.
_ANSWERS_OF_AN_AUTHORISED_PROBE = ('ResourceNotFoundException',
                                   'ValidationException')
# The permissions an EBS-backed install needs, for messages.
PERMISSIONS = ('ebs:StartSnapshot, ebs:PutSnapshotBlock, '
               'ebs:CompleteSnapshot, ec2:DescribeSnapshots, '
               'ec2:RegisterImage, and ec2:DeleteSnapshot and '
               'ec2:DeregisterImage to undo')

_LEAVE_OUT_EBS = ('a cloud without the EBS direct APIs (Eucalyptus has none) '
                  'takes instance-store images: install without --ebs')
# EC2's endpoints on AWS: ec2[-fips].REGION.amazonaws.com[.cn], the global
# ec2.amazonaws.com (us-east-1), and the older REGION.ec2.amazonaws.com.
_AWS_EC2_HOST = re.compile(
    r'^(?:ec2(?P<fips>-fips)?(?:\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+))?'
    r'|(?P<older>[a-z]{2}(?:-[a-z]+)+-\d+)\.ec2)'
    r'\.amazonaws\.com(?P<china>\.cn)?$')
_AWS_EBS_HOST = re.compile(
    r'^ebs(?:-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)'
    r'\.amazonaws\.com(?:\.cn)?$')


class NoEbsDirectError(MissingEndpointError):
    """The cloud has no EBS direct APIs, or none at the URL given."""


def aws_ebs_endpoint(ec2_url):
    """
    (AWS's EBS direct APIs URL, region) for AWS's EC2 endpoint
    ``ec2_url``, or None for any other cloud's.
    """
    host = (urlparse.urlparse(ec2_url or '').hostname or '').lower()
    match = _AWS_EC2_HOST.match(host)
    if match is None:
        return None
    region = match.group('region') or match.group('older') or 'us-east-1'
    return ('https://ebs{0}.{1}.amazonaws.com{2}'.format(
        match.group('fips') or '', region, match.group('china') or ''),
        region)


class EBS(CloudService):
    """
    The EBS direct APIs.  ``ec2`` is the cloud's EC2 service: its URL,
    when AWS's, gives the endpoint when nothing else does, and its region
    signs requests to an endpoint given without one.  Requests are not
    retried here: the snapshot writer retries them, within a budget.
    """
    NAME = 'ebs'
    DESCRIPTION = 'the EBS direct APIs'
    API_VERSION = '2019-11-02'
    URL_ENVVARS = ('EBS_URL',)
    OPTION = '--ebs-url'

    def __init__(self, config, ec2=None, **kwargs):
        kwargs.setdefault('max_retries', 0)
        CloudService.__init__(self, config, **kwargs)
        self.ec2 = ec2

    def validate_config(self):
        derived = aws_ebs_endpoint(self.ec2.endpoint) \
            if self.endpoint is None and self.ec2 is not None else None
        if derived is not None:
            # Kept as if given (REGION::URL), so that the configure() every
            # request does finds it again at once.
            self.args['url'] = '{1}::{0}'.format(*derived)
            self.endpoint, self.region_name = derived
        if self.endpoint is None:
            raise NoEbsDirectError(
                'no endpoint of the EBS direct APIs is known{0}: give one '
                'with --ebs-url, EBS_URL or "ebs-url" in the region\'s '
                'euca2ools configuration; {1}'.format(
                    ' (EC2 at {0} is not AWS\'s)'.format(self.ec2.endpoint)
                    if self.ec2 is not None else '', _LEAVE_OUT_EBS))
        if self.region_name is None:
            match = _AWS_EBS_HOST.match(
                (urlparse.urlparse(self.endpoint).hostname or '').lower())
            self.region_name = match.group('region') if match else \
                getattr(self.ec2, 'region_name', None)

    def handle_http_error(self, response):
        raise ebs_error(self, response)


def _json_body(response):
    """The answer's JSON object, {} for an empty body, None for what is
    not JSON."""
    if not response.content:
        return {}
    try:
        body = json.loads(response.content.decode('utf-8'))
    except ValueError:  # UnicodeDecodeError included
        return None
    return body if isinstance(body, dict) else None


def _not_the_api(service, response):
    return NoEbsDirectError(
        '{0} did not answer as the EBS direct APIs do ({1} {2}); {3}, or '
        'give their endpoint with --ebs-url or EBS_URL'.format(
            service.endpoint, response.status_code,
            response.headers.get('Content-Type') or 'no content type',
            _LEAVE_OUT_EBS), response.status_code)


def ebs_error(service, response):
    """
    The error of a refused request: a CloudError with the code and message
    of the APIs' JSON answer (the code also in x-amzn-ErrorType), or of an
    AWS XML one for keys refused before the APIs were reached (moto's) or
    a server's failure; any other answer is NoEbsDirectError.
    """
    body = _json_body(response)
    kind = response.headers.get('x-amzn-ErrorType')
    if body is None and not kind:
        err = error_from_response(service, response)
        # 501: "not implemented", what a server says of a method it has
        # not: not the APIs either.
        if (response.status_code >= 500 and response.status_code != 501) \
                or (response.status_code in (401, 403) and err.code):
            return err
        return _not_the_api(service, response)
    body = body or {}
    code = (kind or body.get('__type') or body.get('code') or
            body.get('Code') or '')
    # "Code:namespace" in the header, "namespace#Code" in some bodies.
    code = six.text_type(code).split(':')[0].split('#')[-1] or None
    text = body.get('message') or body.get('Message') or response.reason
    text = ' '.join(six.text_type(text or '').split())
    if body.get('Reason'):
        text += ' [{0}]'.format(body['Reason'])
    return CloudError('{0} at {1} refused the request ({2} {3}{4})'.format(
        service.DESCRIPTION, service.endpoint, response.status_code,
        code + ': ' if code else '', text), code=code,
        status_code=response.status_code)


class _EbsRequest(BaseRequest):
    SUITE = EustoreSuite
    SERVICE_CLASS = EBS
    AUTH_CLASS = CloudAuth

    def parse_response(self, response):
        body = _json_body(response)
        if body is None:
            raise _not_the_api(self.service, response)
        return body


class StartSnapshot(_EbsRequest):
    METHOD = 'POST'


class CompleteSnapshot(_EbsRequest):
    METHOD = 'POST'


def _json(document):
    return json.dumps(document, sort_keys=True).encode('utf-8')


class EbsDirect(object):
    """
    The EBS direct APIs of ``cloud`` (a Cloud: its keys sign the
    requests, its EC2 gives the endpoint when nothing else does).
    """

    def __init__(self, cloud, service):
        self.cloud = cloud
        self.service = service
        self._sign = cloud.auth.bind_to_service(service)
        self._proxies = requests.utils.get_environ_proxies(service.endpoint)
        self._user_agent = EustoreSuite().get_user_agent()

    @classmethod
    def from_command(cls, command, cloud, url=None):
        """The APIs of ``cloud`` as the command's options and configuration
        name them (``url``: the --ebs-url option); raises
        NoEbsDirectError when nothing does."""
        service = EBS(command.config, ec2=cloud.ec2,
                      loglevel=command.log.level, url=url,
                      region=command.args.get('region'))
        service.configure()
        return cls(cloud, service)

    @property
    def endpoint(self):
        return self.service.endpoint

    def allow_connections(self, count):
        """Keep up to ``count`` connections open (one per block in
        flight; requests keeps 10 and reopens the rest each time)."""
        session = self.service.session
        for prefix in ('https://', 'http://'):
            session.mount(prefix, requests.adapters.HTTPAdapter(
                pool_maxsize=max(count, 1), max_retries=0))

    def _send(self, request_cls, path, headers=None, body=b''):
        return self.cloud._send(request_cls, self.service, path=path,
                                headers=dict(headers or {}), body=body)

    def start_snapshot(self, volume_size, client_token, description=None,
                       tags=None):
        """
        StartSnapshot of a ``volume_size`` GiB volume; the answer (a dict
        with SnapshotId).  ``client_token`` makes a retry return the
        snapshot the first attempt made, if it made one.
        """
        document = {'VolumeSize': volume_size, 'ClientToken': client_token}
        if description:
            document['Description'] = description
        if tags:
            document['Tags'] = [{'Key': key, 'Value': value}
                                for key, value in sorted(tags.items())]
        answer = self._send(StartSnapshot, 'snapshots',
                            {'Content-Type': 'application/json'},
                            _json(document))
        if not isinstance(answer.get('SnapshotId'), six.string_types):
            raise NoEbsDirectError(
                '{0} answered StartSnapshot without a snapshot ID; {1}'
                .format(self.endpoint, _LEAVE_OUT_EBS))
        return answer

    def put_block(self, snapshot_id, index, data, checksum):
        """
        PutSnapshotBlock: ``data`` (BLOCK_SIZE bytes) as block ``index``,
        with its base64 SHA-256 ``checksum``.  The body is sent unsigned,
        as the APIs ask: the signed checksum covers it.

        Sent on the service's session and signed by its auth, but without
        a requestbuilder request: building one (an argparse parser) and
        requestbuilder's scan of the environment for proxies at each send
        cost 40% of the client's CPU a block (profiled against moto), and
        an image has thousands of blocks.  No retries here, as for every
        EBS request; a refusal is ebs_error's, as theirs.
        """
        endpoint = self.endpoint
        url = '{0}{1}snapshots/{2}/blocks/{3}'.format(
            endpoint, '' if endpoint.endswith('/') else '/', snapshot_id,
            index)
        session = self.service.session
        prepared = session.prepare_request(requests.Request(
            'PUT', url, data=data, auth=self._sign, headers={
                'Content-Type': 'application/octet-stream',
                'X-Amz-Content-SHA256': 'UNSIGNED-PAYLOAD',
                'x-amz-Data-Length': str(len(data)),
                'x-amz-Checksum': checksum,
                'x-amz-Checksum-Algorithm': 'SHA256',
                'User-Agent': self._user_agent}))
        try:
            response = session.send(prepared, timeout=self.service.timeout,
                                    proxies=self._proxies,
                                    allow_redirects=False)
            # Read whole, so that the connection goes back to the pool.
            response.content
        except requests.exceptions.RequestException as err:
            raise CloudError('cannot reach {0} at {1} ({2})'.format(
                self.service.DESCRIPTION, endpoint, err))
        LOG.debug('PUT %s: %d', url, response.status_code)
        if response.status_code >= 300:
            raise ebs_error(self.service, response)

    def complete_snapshot(self, snapshot_id, changed_blocks, checksum=None):
        """
        CompleteSnapshot, saying how many blocks were written and (when
        given) the base64 SHA-256 of their checksums' digests in block
        order, which the cloud checks; returns the status it answers.
        """
        headers = {'x-amz-ChangedBlocksCount': str(changed_blocks)}
        if checksum:
            headers.update({'x-amz-Checksum': checksum,
                            'x-amz-Checksum-Algorithm': 'SHA256',
                            'x-amz-Checksum-Aggregation-Method': 'LINEAR'})
        return self._send(CompleteSnapshot, 'snapshots/completion/' +
                          snapshot_id, headers).get('Status')

    def check_access(self):
        """
        The harmless call of a dry run: CompleteSnapshot of a snapshot
        that cannot exist.  It is a write the install needs, and AWS
        authorises a call before it looks for its snapshot, so answering
        "no such snapshot" proves the endpoint is the EBS direct APIs, the
        keys are good and the account may complete snapshots; it changes
        nothing.  Returns the endpoint; raises CloudError or
        NoEbsDirectError saying what is wrong.
        """
        try:
            self.complete_snapshot(PROBE_SNAPSHOT, 0)
        except CloudError as err:
            if err.code in _ANSWERS_OF_AN_AUTHORISED_PROBE:
                return self.endpoint
            if err.code == 'AccessDeniedException':
                raise CloudError('{0}; the account needs {1}'.format(
                    err, PERMISSIONS), code=err.code,
                    status_code=err.status_code)
            raise
        return self.endpoint
