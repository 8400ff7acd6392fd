# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
EBS snapshots in moto, written with the plugin's EbsDirect and read back
with an independent client, botocore's ``ebs``; and EBS's own answers
where moto has none (it answers 500 for a snapshot it does not have).

moto's server answers the EBS direct APIs on the port of its EC2 and S3:
it routes a request by the service its SigV4 credential scope names
(``ebs``), so the same URL serves as EC2_URL and as the EBS endpoint.
Its snapshots are EC2's too (DescribeSnapshots, DeleteSnapshot), but it
ignores the client token, accepts any checksum, calls every snapshot
completed at once, and shows every owner's snapshots to
DescribeSnapshots' Owner=self.
"""

from __future__ import absolute_import

import base64
import hashlib
import json
import logging
import re

from eustore_plugin.cloud.ebs import BLOCK_SIZE
from tests.support.moto import REGION, direct_cloud

# PutSnapshotBlock's path: /snapshots/ID/blocks/INDEX.
BLOCK_PATH_RE = re.compile(r'^/snapshots/(snap-[0-9a-f]+)/blocks/(\d+)$')


def ebs_direct(moto, url=None):
    """(Cloud, EbsDirect) on moto, or on ``url`` (a CloudProxy before it):
    EC2 and the EBS direct APIs at the same place, as moto has them."""
    from requestbuilder.config import ConfigData, ConfigView

    from eustore_plugin.cloud.ebs import EBS, EbsDirect
    cloud = direct_cloud(moto, url)
    service = EBS(ConfigView(ConfigData([])), ec2=cloud.ec2,
                  loglevel=logging.CRITICAL,
                  url='{0}::{1}'.format(REGION, url or moto.url))
    service.configure()
    return cloud, EbsDirect(cloud, service)


def ebs_reader(moto):
    """botocore's EBS client on moto.  moto checks a signature against the
    payload hash in X-Amz-Content-SHA256 when there is one, else against
    a hash of what it parsed (not the body) and refuses botocore's GETs:
    the header is added, as S3 clients send it."""
    import botocore.session
    session = botocore.session.get_session()
    client = session.create_client(
        'ebs', region_name=REGION, endpoint_url=moto.url,
        aws_access_key_id=moto.key_id, aws_secret_access_key=moto.secret_key)

    def payload_hash(request, **_):
        request.headers['X-Amz-Content-SHA256'] = hashlib.sha256(
            request.body or b'').hexdigest()
    client.meta.events.register('before-sign.ebs.*', payload_hash)
    return client


def read_snapshot(client, snapshot_id):
    """{block index: bytes} of every block written to the snapshot, read
    with ``client`` (ebs_reader)."""
    blocks, token = {}, None
    while True:
        page = client.list_snapshot_blocks(
            SnapshotId=snapshot_id, **({'NextToken': token} if token else {}))
        for block in page.get('Blocks') or []:
            # moto's indexes are strings, which older botocore keeps.
            index = int(block['BlockIndex'])
            blocks[index] = client.get_snapshot_block(
                SnapshotId=snapshot_id, BlockIndex=index,
                BlockToken=block['BlockToken'])['BlockData'].read()
        token = page.get('NextToken')
        if not token:
            return blocks


def aws_error(code, message, reason=None):
    """An answer of the EBS direct APIs' own (REST JSON), as the proxy's
    ``answer``, with the code in its body; AWS also sends it in a header
    (x-amzn-ErrorType) that the proxy does not."""
    body = {'__type': code, 'message': message}
    if reason:
        body['Reason'] = reason
    return 'application/json', json.dumps(body).encode('utf-8')


def answer_the_access_check(proxy, times=1):
    """Have ``proxy`` answer the dry run's access check (EbsDirect.
    check_access) as AWS does, "no such snapshot": moto answers 500."""
    from eustore_plugin.cloud.ebs import PROBE_SNAPSHOT
    proxy.fail(lambda method, path, body: method == 'POST' and
               path == '/snapshots/completion/' + PROBE_SNAPSHOT,
               status=404, times=times, answer=aws_error(
                   'ResourceNotFoundException', 'The snapshot does not '
                   'exist.', 'SNAPSHOT_NOT_FOUND'))


def put_block_requests(proxy):
    """(index, headers, body) of each PutSnapshotBlock the proxy saw."""
    found = []
    for (method, path, body), headers in zip(proxy.requests, proxy.headers):
        match = BLOCK_PATH_RE.match(path)
        if method == 'PUT' and match:
            found.append((int(match.group(2)), dict(
                (key.lower(), value) for key, value in headers.items()),
                body))
    return found


def snapshots_tagged(cloud, key, value):
    """Ids of the snapshots moto has with the tag ``key`` = ``value``."""
    return sorted(
        snapshot['snapshotId'] for snapshot in cloud.describe_snapshots(
            owner='self', filters={'tag:' + key: [value]})
        if {'key': key, 'value': value} in (snapshot.get('tagSet') or []))


def expected_blocks(data):
    """{index: block} of the disk's blocks holding anything, padded."""
    found = {}
    for index, start in enumerate(range(0, len(data), BLOCK_SIZE)):
        block = data[start:start + BLOCK_SIZE]
        block += b'\0' * (BLOCK_SIZE - len(block))
        if block.strip(b'\0'):
            found[index] = block
    return found


def b64_sha256(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode('ascii')


def snapshot_ids(cloud):
    return set(snapshot['snapshotId'] for snapshot in
               cloud.describe_snapshots(owner='self'))


def is_block(index=None):
    def predicate(method, path, body):
        match = BLOCK_PATH_RE.match(path)
        return method == 'PUT' and bool(match) and (
            index is None or int(match.group(2)) == index)
    return predicate


def is_start(method, path, body):
    return method == 'POST' and path == '/snapshots'


def is_completion(method, path, body):
    return method == 'POST' and path.startswith('/snapshots/completion/')
