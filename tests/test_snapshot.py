# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The snapshot writer (eustore_plugin/install/snapshot.py) and the EBS
direct APIs (eustore_plugin/cloud/ebs.py) against moto on loopback: every
block read back with botocore's EBS client equals the disk (empty blocks
absent, data blocks exact); each PutSnapshotBlock's checksum matches its
body, as a recording proxy saw it (moto accepts a wrong one); retries of
what AWS asks clients to retry, within a budget; failures, Ctrl-C, SIGTERM
and kill -9 at each step leave no snapshot once the journal is undone.
"""

from __future__ import absolute_import

import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requestbuilder.config
from six.moves.urllib.parse import urlparse

from eustore_plugin.cloud.ebs import (BLOCK_SIZE, EBS, PROBE_SNAPSHOT,
                                      NoEbsDirectError, aws_ebs_endpoint)
from eustore_plugin.cloud.services import EC2, CloudError
from eustore_plugin.errors import EustoreError
from eustore_plugin.install.journal import (CLIENT_TOKEN_TAG, Journal,
                                            undo_abandoned)
from eustore_plugin.install.snapshot import (GIB, PENDING_BLOCKS,
                                             RetryPolicy, SnapshotWriter,
                                             volume_size)
from tests.support.ebs import (BLOCK_PATH_RE, answer_the_access_check,
                               aws_error, b64_sha256, ebs_direct, ebs_reader,
                               expected_blocks, is_block, is_completion,
                               is_start, put_block_requests, read_snapshot,
                               snapshot_ids, snapshots_tagged)
from tests.support.images import BrokenStream, image_bytes

# Quick retries, so that the tests of giving up do not wait for minutes.
QUICK = RetryPolicy(attempts=4, budget=30.0, first_delay=0.01,
                    max_delay=0.05)


# conftest's ``proxy`` (the install cloud behind the recording, failing
# proxy) and ``cloud`` (the install cloud itself, to look and tidy).


@pytest.fixture
def reader(install_cloud):
    return ebs_reader(install_cloud)


@pytest.fixture
def journal(install_cloud, proxy, tmpdir):
    proxied, _ = ebs_direct(install_cloud, proxy.url)
    return Journal(proxied.identity('123456789012'),
                   str(tmpdir.join('installs')))


@pytest.fixture
def writer(install_cloud, proxy, journal):
    """A writer through the proxy, with quick retries."""
    proxied, ebs = ebs_direct(install_cloud, proxy.url)
    return SnapshotWriter(ebs, proxied, journal, concurrency=4, retry=QUICK)


class Dribble(object):
    """A stream that gives at most ``most`` bytes a read, as a socket or
    a decompressor may; ``given`` counts what it gave."""

    def __init__(self, data, most=100003):
        self._data = io.BytesIO(data)
        self._most = most
        self.given = 0

    def read(self, size=-1):
        size = self._most if size is None or size < 0 else \
            min(size, self._most)
        data = self._data.read(size)
        self.given += len(data)
        return data


def disk(*blocks):
    """A disk of the blocks given: 'z' all zeros, 'd' data, 'e' zeros but
    its last byte, 'p' a data block cut short (the disk's last, then)."""
    made = []
    for number, kind in enumerate(blocks):
        if kind == 'z':
            made.append(b'\0' * BLOCK_SIZE)
        elif kind == 'e':
            made.append(b'\0' * (BLOCK_SIZE - 1) + b'\x01')
        else:
            data = image_bytes(BLOCK_SIZE, seed=number + 1)
            # image_bytes may start with zeros: a byte that is not.
            made.append(b'\x02' + data[1:] if kind == 'd' else
                        b'\x02' + data[1:BLOCK_SIZE // 3])
    return b''.join(made)


def tokens_in(journal):
    return [action.client_token for action in journal.actions
            if action.KIND == 'starting-snapshot']


# ------------------------------------------------------------- the blocks

def test_every_block_read_back_equals_the_disk(writer, reader, cloud):
    data = disk('d', 'z', 'e', 'z', 'z', 'd', 'p')
    stream = Dribble(data)
    snapshot = writer.write(stream, len(data), description=u'demo disk',
                            tags={'eustore:image': 'demo'})
    expected = expected_blocks(data)
    assert sorted(expected) == [0, 2, 5, 6]
    assert read_snapshot(reader, snapshot.id) == expected
    assert snapshot.blocks == 4 and snapshot.volume_size == 1
    assert stream.given == len(data)
    # The aggregate: SHA-256 of the blocks' digests in block order.
    assert snapshot.checksum == b64_sha256(b''.join(
        hashlib.sha256(expected[index]).digest()
        for index in sorted(expected)))
    (described,) = cloud.describe_snapshots([snapshot.id])
    tags = dict((tag['key'], tag['value']) for tag in described['tagSet'])
    assert described['status'] == 'completed'
    assert described['description'] == 'demo disk'
    assert tags == {'eustore:image': 'demo',
                    CLIENT_TOKEN_TAG: tokens_in(writer.journal)[0]}
    cloud.delete_snapshot(snapshot.id)


def test_each_block_carries_the_checksum_of_its_body(writer, proxy):
    data = disk('d', 'e', 'z', 'd', 'p')
    snapshot = writer.write(io.BytesIO(data), len(data))
    puts = put_block_requests(proxy)
    assert sorted(index for index, _, _ in puts) == [0, 1, 3, 4]
    for index, headers, body in puts:
        assert len(body) == BLOCK_SIZE
        assert headers['x-amz-data-length'] == str(BLOCK_SIZE)
        assert headers['x-amz-checksum'] == b64_sha256(body)
        assert headers['x-amz-checksum-algorithm'] == 'SHA256'
        # The body is not signed (as the APIs ask); its checksum is.
        assert headers['x-amz-content-sha256'] == 'UNSIGNED-PAYLOAD'
        signed = headers['authorization'].split('SignedHeaders=')[1] \
            .split(',')[0].split(';')
        assert 'x-amz-checksum' in signed and \
            'x-amz-content-sha256' in signed
    (completion,) = [dict((key.lower(), value) for key, value in
                          headers.items())
                     for (method, path, _), headers in
                     zip(proxy.requests, proxy.headers)
                     if is_completion(method, path, None)]
    assert completion['x-amz-changedblockscount'] == '4'
    assert completion['x-amz-checksum'] == snapshot.checksum
    assert completion['x-amz-checksum-aggregation-method'] == 'LINEAR'


def test_the_volume_is_the_image_rounded_up_to_whole_gib(writer, proxy,
                                                         cloud):
    assert volume_size(0) == 1
    assert volume_size(GIB) == 1
    assert volume_size(GIB + 1) == 2
    assert volume_size(GIB + 1, 8) == 8
    with pytest.raises(EustoreError) as raised:
        volume_size(3 * GIB + 1, 3)
    assert str(raised.value) == (
        'a volume of 3 GiB cannot hold the image (3221225473 bytes): give '
        'at least 4 GiB, or leave the volume size out')
    with pytest.raises(EustoreError):
        volume_size(GIB, 65537)

    data = disk('d')
    snapshot = writer.write(io.BytesIO(data), len(data), volume_gib=3)
    (start,) = [json.loads(body.decode('utf-8'))
                for method, path, body in proxy.requests
                if is_start(method, path, body)]
    assert start['VolumeSize'] == 3 == snapshot.volume_size
    cloud.delete_snapshot(snapshot.id)


def test_blocks_are_in_flight_together(writer, proxy, cloud):
    # The first block held unanswered by the cloud: the others go up
    # meanwhile.  (With concurrency 1 none would.)
    data = disk('d', 'd', 'd', 'd', 'd')
    held = proxy.hold(is_block())
    done = threading.Event()
    seen = []

    def release_after_another():
        held.arrived.wait(60)
        deadline = time.time() + 60  # for a writer that never sends them
        while len(put_block_requests(proxy)) < 3 and time.time() < deadline:
            done.wait(0.05)
        seen.append(len(put_block_requests(proxy)))
        held.release()

    thread = threading.Thread(target=release_after_another)
    thread.start()
    try:
        snapshot = writer.write(io.BytesIO(data), len(data))
    finally:
        done.set()
        thread.join()
    assert seen[0] >= 3
    cloud.delete_snapshot(snapshot.id)


def test_blocks_held_are_bounded(install_cloud, proxy, journal, cloud):
    # Both uploads held by the cloud: the writer reads the 2 + PENDING_BLOCKS
    # blocks it may hold and the one it waits to hand over, no further.
    proxied, ebs = ebs_direct(install_cloud, proxy.url)
    writer = SnapshotWriter(ebs, proxied, journal, concurrency=2,
                            retry=QUICK)
    holds = [proxy.hold(is_block()), proxy.hold(is_block())]
    most = 2 + PENDING_BLOCKS + 1
    data = disk(*['d'] * (most + 3))
    stream = Dribble(data, most=BLOCK_SIZE)
    done = threading.Event()
    given = []

    def watch():
        for held in holds:
            held.arrived.wait(60)
        deadline = time.time() + 60  # for a writer that never reads them
        while stream.given < most * BLOCK_SIZE and time.time() < deadline:
            done.wait(0.05)
        done.wait(0.5)  # a reader that did not stop would go on now
        given.append(stream.given)
        for held in holds:
            held.release()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        snapshot = writer.write(stream, len(data))
    finally:
        done.set()
        thread.join()
    assert given == [most * BLOCK_SIZE]
    cloud.delete_snapshot(snapshot.id)


# --------------------------------------------------------------- retries

@pytest.mark.parametrize('status, answer', [
    (500, None),
    (503, None),
    (400, aws_error('RequestThrottledException', 'Rate exceeded',
                    'ACCOUNT_THROTTLED')),
    (429, aws_error('ThrottlingException', 'Rate exceeded')),
    # A snapshot just started may not take blocks yet (coldsnap's #43).
    (404, aws_error('ResourceNotFoundException', 'The snapshot does not '
                    'exist.', 'SNAPSHOT_NOT_FOUND'))])
def test_what_aws_asks_to_retry_is_retried(writer, proxy, reader, cloud,
                                           status, answer):
    data = disk('d', 'd', 'z', 'd')
    proxy.fail(is_block(1), status=status, times=2, answer=answer)
    snapshot = writer.write(io.BytesIO(data), len(data))
    assert [index for index, _, _ in put_block_requests(proxy)
            ].count(1) == 3
    assert read_snapshot(reader, snapshot.id) == expected_blocks(data)
    cloud.delete_snapshot(snapshot.id)


def test_retries_end_and_the_journal_undoes_the_snapshot(writer, proxy,
                                                         cloud):
    data = disk('d', 'd', 'd')
    proxy.fail(is_block(2), status=500, times=100)
    with pytest.raises(CloudError) as raised:
        writer.write(io.BytesIO(data), len(data))
    assert str(raised.value) == (
        'the EBS direct APIs at {0} refused the request (500 Injected: '
        'fault injected by the test)'.format(proxy.url))
    assert [index for index, _, _ in put_block_requests(proxy)
            ].count(2) == QUICK.attempts
    (token,) = tokens_in(writer.journal)
    (snapshot_id,) = snapshots_tagged(cloud, CLIENT_TOKEN_TAG, token)
    assert writer.journal.undo(writer.cloud) == []
    assert snapshot_id not in snapshot_ids(cloud)


def test_retries_end_within_their_time_budget(install_cloud, proxy, journal,
                                              cloud):
    proxied, ebs = ebs_direct(install_cloud, proxy.url)
    writer = SnapshotWriter(ebs, proxied, journal, concurrency=2, retry=(
        RetryPolicy(attempts=1000, budget=0.5, first_delay=0.1,
                    max_delay=0.1)))
    data = disk('d')
    proxy.fail(is_block(0), status=503, times=1000)
    with pytest.raises(CloudError):
        writer.write(io.BytesIO(data), len(data))
    assert 2 <= len(put_block_requests(proxy)) < 1000
    assert journal.undo(proxied) == []


def test_a_refusal_is_not_retried(writer, proxy, cloud):
    data = disk('d', 'd')
    proxy.fail(is_block(1), status=400, times=100, answer=aws_error(
        'ValidationException', 'The checksum is not valid.',
        'INVALID_BLOCK'))
    with pytest.raises(CloudError) as raised:
        writer.write(io.BytesIO(data), len(data))
    assert raised.value.code == 'ValidationException'
    assert str(raised.value).endswith(
        '(400 ValidationException: The checksum is not valid. '
        '[INVALID_BLOCK])')
    assert [index for index, _, _ in put_block_requests(proxy)
            ].count(1) == 1
    assert writer.journal.undo(writer.cloud) == []


# -------------------------------------------------- failures at each step

def test_a_refused_start_leaves_nothing(writer, proxy, cloud):
    before = snapshot_ids(cloud)
    proxy.fail(is_start, status=403, answer=aws_error(
        'AccessDeniedException', 'User is not authorized to perform: '
        'ebs:StartSnapshot', 'UNAUTHORIZED_ACCOUNT'))
    with pytest.raises(CloudError) as raised:
        writer.write(io.BytesIO(disk('d')), BLOCK_SIZE)
    assert raised.value.code == 'AccessDeniedException'
    assert put_block_requests(proxy) == []
    assert writer.journal.undo(writer.cloud) == []
    assert snapshot_ids(cloud) == before


def test_starts_whose_answers_were_lost_are_found_by_their_token(
        writer, proxy, cloud):
    # Each StartSnapshot lands and its answer is lost: moto ignores the
    # client token, so every attempt made a snapshot nobody knows the id
    # of; the tag with the token finds them all.
    before = snapshot_ids(cloud)
    proxy.fail(is_start, status=500, times=100, landed=True)
    with pytest.raises(CloudError):
        writer.write(io.BytesIO(disk('d')), BLOCK_SIZE)
    (token,) = tokens_in(writer.journal)
    assert len(snapshots_tagged(cloud, CLIENT_TOKEN_TAG, token)) == \
        QUICK.attempts
    assert writer.journal.undo(writer.cloud) == []
    assert snapshot_ids(cloud) == before


def test_a_failed_completion_is_undone(writer, proxy, cloud):
    before = snapshot_ids(cloud)
    proxy.fail(is_completion, status=500, times=100)
    with pytest.raises(CloudError):
        writer.write(io.BytesIO(disk('d', 'z', 'd')), 3 * BLOCK_SIZE)
    assert len(put_block_requests(proxy)) == 2
    assert writer.journal.undo(writer.cloud) == []
    assert snapshot_ids(cloud) == before


def test_a_snapshot_the_cloud_fails_is_said_and_undone(writer, proxy,
                                                       cloud):
    # moto completes every snapshot at once: EC2's answer for one that
    # failed is made up here, as AWS gives it.
    before = snapshot_ids(cloud)
    failed = textwrap.dedent(u'''\
        <DescribeSnapshotsResponse><snapshotSet><item>
        <snapshotId>snap-0123456789abcdef0</snapshotId>
        <status>error</status><statusMessage>checksum mismatch
        </statusMessage></item></snapshotSet></DescribeSnapshotsResponse>
        ''').encode('utf-8')
    proxy.fail(lambda method, path, body: b'Action=DescribeSnapshots' in
               body, status=200, answer=('text/xml', failed))
    with pytest.raises(EustoreError) as raised:
        writer.write(io.BytesIO(disk('d')), BLOCK_SIZE)
    assert str(raised.value).endswith('failed (checksum mismatch); the '
                                      'image is not installed')
    assert writer.journal.undo(writer.cloud) == []
    assert snapshot_ids(cloud) == before


@pytest.mark.parametrize('stream, message', [
    (BrokenStream(disk('d', 'd', 'd'), 2 * BLOCK_SIZE + 7),
     'reading the image failed after {0} of {1} bytes: connection reset '
     'by peer'.format(2 * BLOCK_SIZE, 4 * BLOCK_SIZE)),
    (io.BytesIO(disk('d', 'd', 'd')),
     'the image ended after {0} bytes but {1} were declared; the image '
     'file or download is truncated'.format(3 * BLOCK_SIZE, 4 * BLOCK_SIZE))
])
def test_a_broken_source_is_said_and_undone(writer, proxy, cloud, stream,
                                            message):
    before = snapshot_ids(cloud)
    with pytest.raises(ValueError) as raised:
        writer.write(stream, 4 * BLOCK_SIZE)
    assert str(raised.value) == message
    assert writer.journal.undo(writer.cloud) == []
    assert snapshot_ids(cloud) == before


def test_a_source_longer_than_declared_is_refused(writer, cloud):
    before = snapshot_ids(cloud)
    with pytest.raises(ValueError) as raised:
        writer.write(io.BytesIO(disk('d', 'd')), BLOCK_SIZE)
    assert str(raised.value) == ('the image holds more than the {0} bytes '
                                 'declared; declare its real size'.format(
                                     BLOCK_SIZE))
    assert writer.journal.undo(writer.cloud) == []
    assert snapshot_ids(cloud) == before


def test_the_snapshot_is_journalled_before_its_first_block(writer, proxy,
                                                           cloud):
    seen = []

    def first_block(method, path, body):
        if method == 'PUT' and BLOCK_PATH_RE.match(path) and not seen:
            with open(writer.journal.path) as written:
                seen.append([json.loads(line) for line in written])
        return False
    proxy.fail(first_block)
    snapshot = writer.write(io.BytesIO(disk('z', 'd')), 2 * BLOCK_SIZE)
    (records,) = seen
    assert [record.get('action') for record in records[1:]] == [
        'starting-snapshot', 'created-snapshot']
    assert records[2]['snapshot_id'] == snapshot.id
    assert records[1]['client_token'] == tokens_in(writer.journal)[0]
    cloud.delete_snapshot(snapshot.id)


# ------------------------------------------------- interrupted and killed

RUN = '''
import io, json, os, sys
from eustore_plugin.install.journal import Journal
from eustore_plugin.install.snapshot import RetryPolicy, SnapshotWriter
from eustore_plugin.signals import raise_on_signals
from tests.support.ebs import ebs_direct
from tests.support.images import image_bytes
config = json.loads(sys.argv[1])
raise_on_signals()
cloud, ebs = ebs_direct(type('Moto', (), config['moto']), config['url'])
journal = Journal(cloud.identity('123456789012'), config['journal'])
writer = SnapshotWriter(ebs, cloud, journal, concurrency=2,
                        retry=RetryPolicy(4, 30.0, 0.01, 0.05))
data = b''.join(b'\\x01' + image_bytes(512 * 1024 - 1, seed=number)
                for number in range(config['blocks']))
try:
    writer.write(io.BytesIO(data), len(data))
except BaseException as err:
    left = journal.undo(cloud)
    sys.stdout.write(json.dumps({'error': type(err).__name__,
                                 'left': left}) + '\\n')
    sys.exit(130)
sys.stdout.write(json.dumps({'error': None}) + '\\n')
'''


def start_writer(moto, proxy, tmpdir, blocks=8):
    """The writer in a process of its own, writing ``blocks`` blocks into
    ``moto`` through ``proxy``; it undoes its journal when it fails."""
    config = {'moto': {'url': moto.url, 'key_id': moto.key_id,
                       'secret_key': moto.secret_key},
              'url': proxy.url, 'journal': str(tmpdir.join('installs')),
              'blocks': blocks}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] +
        [os.environ.get('PYTHONPATH', '')]))
    return subprocess.Popen([sys.executable, '-c', RUN, json.dumps(config)],
                            env=env, stdout=subprocess.PIPE), config


def journal_records(config):
    (name,) = os.listdir(config['journal'])
    with open(os.path.join(config['journal'], name)) as written:
        return [json.loads(line) for line in written]


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_write_sends_nothing_after_it_undoes(
        install_cloud, proxy, cloud, tmpdir, signum):
    def deletions():
        return [number for number, (method, path, body) in
                enumerate(proxy.requests)
                if b'Action=DeleteSnapshot' in body]

    before = snapshot_ids(cloud)
    held = proxy.hold(is_block(3))
    run, _ = start_writer(install_cloud, proxy, tmpdir)
    assert held.arrived.wait(60)
    run.send_signal(signum)
    # A writer that did not wait for the block the cloud holds would delete
    # the snapshot meanwhile, and the block would land after that.
    for _ in range(40):
        if deletions():
            break
        time.sleep(0.05)
    released_at = len(proxy.requests)
    held.release()
    output = json.loads(run.stdout.readline().decode('utf-8'))
    assert run.wait() == 130
    assert output == {'error': 'Interrupted' if signum == signal.SIGTERM
                      else 'KeyboardInterrupt', 'left': []}
    assert snapshot_ids(cloud) == before
    (deletion,) = deletions()
    assert deletion >= released_at
    assert not [number for number, (method, path, _) in
                enumerate(proxy.requests)
                if number > deletion and BLOCK_PATH_RE.match(path)]


def test_a_killed_writers_snapshot_is_undone_by_the_next_install(
        install_cloud, proxy, cloud, tmpdir):
    before = snapshot_ids(cloud)
    held = proxy.hold(is_block(3))
    run, config = start_writer(install_cloud, proxy, tmpdir)
    assert held.arrived.wait(60)
    run.kill()
    run.wait()
    held.release(forward=False)
    proxied, _ = ebs_direct(install_cloud, proxy.url)
    snapshot_id = journal_records(config)[2]['snapshot_id']
    assert snapshot_id in snapshot_ids(cloud)
    said = []
    undo_abandoned(proxied, proxied.identity('123456789012'), said.append,
                   directory=config['journal'])
    assert snapshot_ids(cloud) == before
    (line,) = said
    assert 'had left snapshot {0}, a snapshot being started'.format(
        snapshot_id) in line
    assert os.listdir(config['journal']) == []


def test_a_snapshot_started_as_the_writer_was_killed_is_found(
        install_cloud, proxy, cloud, tmpdir):
    # Killed while StartSnapshot was in flight: the snapshot was made, and
    # only its client token is in the journal.
    before = snapshot_ids(cloud)
    held = proxy.hold(is_start)
    run, config = start_writer(install_cloud, proxy, tmpdir)
    assert held.arrived.wait(60)
    run.kill()
    run.wait()
    records = journal_records(config)
    assert [record.get('action') for record in records[1:]] == [
        'starting-snapshot']
    token = records[1]['client_token']
    held.release()  # it reaches moto now, which makes the snapshot
    for _ in range(600):
        if snapshots_tagged(cloud, CLIENT_TOKEN_TAG, token):
            break
        time.sleep(0.05)
    proxied, _ = ebs_direct(install_cloud, proxy.url)
    said = []
    undo_abandoned(proxied, proxied.identity('123456789012'), said.append,
                   directory=config['journal'])
    assert snapshot_ids(cloud) == before
    assert 'a snapshot being started (token {0})'.format(token) in said[0]


# ------------------------------------------------------ endpoint, access

def ebs_service(config_text=None, tmpdir=None, ec2_url=None, **args):
    paths = []
    if config_text:
        path = tmpdir.join('euca2ools.ini')
        path.write_text(textwrap.dedent(config_text), 'utf-8')
        paths.append(str(path))
    config = requestbuilder.config.ConfigView(
        requestbuilder.config.ConfigData(paths), region=args.get('region'))
    ec2 = EC2(config, loglevel=logging.CRITICAL, url=ec2_url,
              region=args.get('region'))
    ec2.configure()
    service = EBS(config, ec2=ec2, loglevel=logging.CRITICAL, **args)
    service.configure()
    return service


@pytest.mark.parametrize('ec2_url, expected', [
    ('https://ec2.eu-west-1.amazonaws.com', (
        'https://ebs.eu-west-1.amazonaws.com', 'eu-west-1')),
    ('https://ec2.amazonaws.com/', (
        'https://ebs.us-east-1.amazonaws.com', 'us-east-1')),
    ('https://ec2-fips.us-gov-west-1.amazonaws.com', (
        'https://ebs-fips.us-gov-west-1.amazonaws.com', 'us-gov-west-1')),
    ('https://ec2.cn-north-1.amazonaws.com.cn', (
        'https://ebs.cn-north-1.amazonaws.com.cn', 'cn-north-1')),
    ('http://us-west-2.ec2.amazonaws.com', (
        'https://ebs.us-west-2.amazonaws.com', 'us-west-2')),
    ('http://10.0.0.1:8773/services/compute', None),
    ('https://ec2.amazonaws.com.example.org/', None),
    ('https://compute.example.com/ec2.us-east-1.amazonaws.com', None)])
def test_aws_ebs_endpoint_of_aws_ec2_only(ec2_url, expected):
    assert aws_ebs_endpoint(ec2_url) == expected


def test_the_endpoint_is_found_the_euca2ools_way(tmpdir, monkeypatch):
    monkeypatch.delenv('EBS_URL', raising=False)
    config = u'''\
        [region lab]
        ec2-url = https://ec2.eu-west-1.amazonaws.com
        ebs-url = https://ebs.example.com/lab
        '''
    derived = ebs_service(ec2_url='https://ec2.eu-west-1.amazonaws.com')
    assert (derived.endpoint, derived.region_name) == (
        'https://ebs.eu-west-1.amazonaws.com', 'eu-west-1')
    configured = ebs_service(config, tmpdir, region='lab')
    assert configured.endpoint == 'https://ebs.example.com/lab'
    monkeypatch.setenv('EBS_URL', 'https://ebs.ap-south-1.amazonaws.com')
    from_env = ebs_service(config, tmpdir, region='lab')
    # The region is the endpoint's own, not the configuration's.
    assert (from_env.endpoint, from_env.region_name) == (
        'https://ebs.ap-south-1.amazonaws.com', 'ap-south-1')
    given = ebs_service(config, tmpdir, region='lab',
                        url='http://127.0.0.1:9/')
    assert given.endpoint == 'http://127.0.0.1:9/'


def test_a_cloud_without_the_apis_is_told_what_to_do(monkeypatch):
    monkeypatch.delenv('EBS_URL', raising=False)
    with pytest.raises(NoEbsDirectError) as raised:
        ebs_service(ec2_url='http://10.0.0.1:8773/services/compute')
    assert str(raised.value) == (
        'no endpoint of the EBS direct APIs is known (EC2 at '
        'http://10.0.0.1:8773/services/compute is not AWS\'s): give one '
        'with --ebs-url, EBS_URL or "ebs-url" in the region\'s euca2ools '
        'configuration; a cloud without the EBS direct APIs (Eucalyptus '
        'has none) takes instance-store images: install without --ebs')


def test_an_answer_that_is_not_the_apis_is_said(install_cloud, store, cloud):
    # A web server (here the tests' store) where the APIs should be.
    _, ebs = ebs_direct(install_cloud, store.url)
    for call in (ebs.check_access, lambda: ebs.start_snapshot(1, 'token')):
        with pytest.raises(NoEbsDirectError) as raised:
            call()
        assert str(raised.value).startswith(
            '{0} did not answer as the EBS direct APIs do (501 '
            'text/html'.format(store.url))
        assert 'install without --ebs' in str(raised.value)


def test_the_access_check_completes_a_snapshot_that_cannot_exist(
        install_cloud, proxy, cloud):
    _, ebs = ebs_direct(install_cloud, proxy.url)
    before = snapshot_ids(cloud)
    answer_the_access_check(proxy)
    assert ebs.check_access() == proxy.url
    ((method, path, _),) = proxy.requests
    assert (method, path) == ('POST', '/snapshots/completion/' +
                              PROBE_SNAPSHOT)
    assert snapshot_ids(cloud) == before

    proxy.fail(is_completion, status=403, answer=aws_error(
        'AccessDeniedException', 'User is not authorized',
        'UNAUTHORIZED_ACCOUNT'))
    with pytest.raises(CloudError) as raised:
        ebs.check_access()
    assert str(raised.value).endswith(
        '(403 AccessDeniedException: User is not authorized '
        '[UNAUTHORIZED_ACCOUNT]); the account needs ebs:StartSnapshot, '
        'ebs:PutSnapshotBlock, ebs:CompleteSnapshot, ec2:DescribeSnapshots, '
        'ec2:RegisterImage, and ec2:DeleteSnapshot and ec2:DeregisterImage '
        'to undo')


def test_keys_the_cloud_refuses_are_said(moto_cloud):
    wrong = type('Moto', (), {'url': moto_cloud.url,
                              's3_url': moto_cloud.s3_url,
                              'key_id': moto_cloud.key_id,
                              'secret_key': 'not-the-secret'})
    _, ebs = ebs_direct(wrong)
    with pytest.raises(CloudError) as raised:
        ebs.check_access()
    assert raised.value.code == 'SignatureDoesNotMatch'
    assert str(raised.value).startswith(
        'the EBS direct APIs at {0} refused the request (403 '
        'SignatureDoesNotMatch: '.format(moto_cloud.url))


def test_a_derived_endpoint_survives_each_requests_configure():
    # Every request configures its service again, from several threads at
    # once: the endpoint must never be None meanwhile.
    service = ebs_service(ec2_url='https://ec2.eu-west-1.amazonaws.com')
    service.configure()
    assert urlparse(service.endpoint).hostname == \
        'ebs.eu-west-1.amazonaws.com'
    assert service.args['url'] == \
        'eu-west-1::https://ebs.eu-west-1.amazonaws.com'
