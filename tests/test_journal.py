# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The install journal (eustore_plugin/install/journal.py) on disk and
against a real cloud (moto on loopback; its S3 Ceph RGW in the RGW leg):
written before each step, undone newest first by identity, and the journals
of interrupted runs undone by the next run into the same cloud, and only
those.
"""

from __future__ import absolute_import

import json
import os
import re
import signal
import stat
import subprocess
import sys
import uuid

import pytest

from eustore_plugin.install.journal import (CreatedBucket, Journal, PutObject,
                                            Registered, Registering,
                                            undo_abandoned)
from tests.support.moto import bucket_is_gone, direct_cloud


@pytest.fixture
def cloud(install_cloud):
    return direct_cloud(install_cloud)


@pytest.fixture
def cloud_id(cloud):
    return cloud.identity('123456789012')


@pytest.fixture
def directory(tmpdir):
    return str(tmpdir.join('installs'))


@pytest.fixture
def bucket(cloud):
    """A bucket of its own, holding image.part.00."""
    name = 'journal-' + uuid.uuid4().hex[:10]
    cloud.create_bucket(name)
    cloud.put_object(name, 'image.part.00', b'part', acl='private')
    return name


def records(path):
    with open(path) as journal:
        return [json.loads(line) for line in journal]


def undo_the_abandoned(cloud, cloud_id, directory):
    """What the next install into ``cloud`` does first; what it said."""
    said = []
    undo_abandoned(cloud, cloud_id, said.append, directory=directory)
    return said


def write_abandoned(directory, cloud_id, *actions):
    """A journal as a run killed with -9 leaves it (not locked)."""
    if not os.path.isdir(directory):
        os.makedirs(directory)
    path = os.path.join(directory, '20261201T000000-{0}.journal'.format(
        uuid.uuid4().hex[:8]))
    with open(path, 'w') as journal:
        for record in ({'cloud': cloud_id, 'pid': 4242,
                        'started': 1764547200},) + actions:
            journal.write(json.dumps(record) + '\n')
    return path


# ------------------------------------------------------------ this run's

def test_each_action_is_on_disk_when_add_returns(cloud_id, directory):
    journal = Journal(cloud_id, directory)
    assert not os.path.exists(directory)  # nothing before the first step
    journal.add(CreatedBucket(bucket='b-1'))
    journal.add(PutObject(bucket='b-1', key='x.part.0'))
    # Read back as another process would, while the run still holds it.
    header, first, second = records(journal.path)
    assert header['cloud'] == cloud_id and header['pid'] == os.getpid()
    assert first == {'action': 'created-bucket', 'bucket': 'b-1'}
    assert second == {'action': 'put-object', 'bucket': 'b-1',
                      'key': 'x.part.0'}
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    journal.finish()
    assert os.listdir(directory) == []


def test_undo_is_newest_first(cloud, cloud_id, directory, bucket):
    # The bucket can only go once the object in it has: oldest first, the
    # bucket's removal would fail.
    journal = Journal(cloud_id, directory)
    journal.add(CreatedBucket(bucket=bucket))
    journal.add(PutObject(bucket=bucket, key='image.part.00'))
    assert [action.describe() for action in journal.pending()] == [
        'object {0}/image.part.00'.format(bucket), 'bucket ' + bucket]
    assert journal.undo(cloud) == []
    assert bucket_is_gone(cloud, bucket)
    assert os.listdir(directory) == []


def test_an_object_put_twice_is_undone_once(cloud, cloud_id, directory,
                                            bucket):
    # euca2ools uploads a bundle again when one of its parts came out
    # short: the journal has each of its PUTs twice.
    journal = Journal(cloud_id, directory)
    journal.add(PutObject(bucket=bucket, key='image.part.00'))
    journal.add(PutObject(bucket=bucket, key='image.part.00'))
    assert [action.describe() for action in journal.pending()] == [
        'object {0}/image.part.00'.format(bucket)]
    cloud.put_object(bucket, 'image.part.00', b'part', acl='private')
    assert journal.undo(cloud) == []
    assert journal.pending() == []
    assert cloud.list_keys(bucket) == []


def test_what_is_not_there_counts_as_undone(cloud, cloud_id, directory):
    # Written down before it was done, and never done: a 404 on undo.
    never = 'journal-never-' + uuid.uuid4().hex[:8]
    journal = Journal(cloud_id, directory)
    journal.add(CreatedBucket(bucket=never))
    journal.add(PutObject(bucket=never, key='image.part.00'))
    assert journal.undo(cloud) == []
    assert journal.pending() == []
    assert os.listdir(directory) == []


def test_what_cannot_be_undone_is_said_and_kept(cloud, cloud_id, directory,
                                                bucket):
    # Another object in the bucket: the bucket stays, and says why.
    cloud.put_object(bucket, 'someone-elses', b'theirs', acl='private')
    journal = Journal(cloud_id, directory)
    journal.add(CreatedBucket(bucket=bucket))
    journal.add(PutObject(bucket=bucket, key='image.part.00'))
    (left,) = journal.undo(cloud)
    assert left.startswith('bucket {0} ('.format(bucket))
    assert cloud.list_keys(bucket) == ['someone-elses']
    assert [action.describe() for action in journal.pending()] == [
        'bucket ' + bucket]
    journal.keep()
    assert len(records(journal.path)) == 3  # for the next run


def test_a_registration_is_undone_by_its_id(cloud, cloud_id, directory):
    name = 'journal-' + uuid.uuid4().hex[:8]
    journal = Journal(cloud_id, directory)
    intent = journal.add(Registering(name=name, location='b/x.manifest.xml'))
    image_id = cloud.register_image(Name=name,
                                    ImageLocation='b/x.manifest.xml')
    journal.settled(intent, Registered(image_id=image_id, name=name))
    assert [action.describe() for action in journal.pending()] == [
        'image {0} ({1})'.format(image_id, name)]
    assert journal.undo(cloud) == []
    assert cloud.images_named(name) == []


def test_an_image_deregistered_meanwhile_counts_as_undone(cloud, cloud_id,
                                                          directory):
    # EC2's "not found" is a 400 with a code of its own, not a 404.
    name = 'journal-' + uuid.uuid4().hex[:8]
    image_id = cloud.register_image(Name=name,
                                    ImageLocation='b/x.manifest.xml')
    cloud.deregister_image(image_id)
    journal = Journal(cloud_id, directory)
    journal.add(Registered(image_id=image_id, name=name))
    assert journal.undo(cloud) == []
    assert os.listdir(directory) == []


def test_a_registration_whose_outcome_is_unknown_is_left_and_said(
        cloud, cloud_id, directory):
    # moto, like some clouds, does not say where an image's manifest is:
    # whether this run registered the image of that name is not known.
    name = 'journal-' + uuid.uuid4().hex[:8]
    image_id = cloud.register_image(Name=name,
                                    ImageLocation='b/x.manifest.xml')
    journal = Journal(cloud_id, directory)
    journal.add(Registering(name=name, location='b/x.manifest.xml'))
    (left,) = journal.undo(cloud)
    assert left.startswith('image {0} named {1}: the cloud does not say '
                           'where its manifest is'.format(image_id, name))
    assert [image['imageId'] for image in cloud.images_named(name)] == [
        image_id]
    cloud.deregister_image(image_id)


def test_an_ebs_registration_in_flight_is_found_by_its_snapshot(
        cloud_id, directory):
    # Not moto: its DescribeImages shows a root device and mapping of its
    # own making, whatever was registered.  A stand-in answers as AWS
    # does: an EBS-backed image's imageLocation is account/name, and the
    # snapshot is its root device's mapping.
    def image(image_id, snapshot):
        return {'imageId': image_id, 'name': 'ebs-image',
                'imageLocation': '123456789012/ebs-image',
                'rootDeviceType': 'ebs', 'rootDeviceName': '/dev/xvda',
                'blockDeviceMapping': [{'deviceName': '/dev/xvda',
                                        'ebs': {'snapshotId': snapshot}}]}

    class AwsLikeCloud(object):
        deregistered = []

        def images_named(self, name):
            return [image('ami-ours', 'snap-ours'),
                    image('ami-theirs', 'snap-theirs')]

        def deregister_image(self, image_id):
            self.deregistered.append(image_id)

    journal = Journal(cloud_id, directory)
    journal.add(Registering(name='ebs-image', location='snap-ours'))
    assert journal.undo(AwsLikeCloud()) == []
    assert AwsLikeCloud.deregistered == ['ami-ours']


# ------------------------------------------------------ interrupted runs

RUN = '''
import json, os, signal, sys
from eustore_plugin.install.journal import Journal, PutObject
journal = Journal(json.loads(sys.argv[1]), sys.argv[2])
journal.add(PutObject(bucket=sys.argv[3], key=sys.argv[4]))
sys.stdout.write(journal.path + '\\n')
sys.stdout.flush()
if sys.argv[5] == 'killed':
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # alive until the test is done with it
'''


def start_run(cloud_id, directory, bucket, how):
    """An install in a process of its own that has journalled one PUT."""
    run = subprocess.Popen(
        [sys.executable, '-c', RUN, json.dumps(cloud_id), directory, bucket,
         'image.part.00', how], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE)
    path = run.stdout.readline().decode('utf-8').strip()
    assert path.endswith('.journal')
    return run, path


def test_a_killed_runs_journal_is_undone_by_the_next(cloud, cloud_id,
                                                     directory, bucket):
    run, path = start_run(cloud_id, directory, bucket, 'killed')
    assert run.wait() == -signal.SIGKILL
    run.stdout.close()
    run.stdin.close()
    said = undo_the_abandoned(cloud, cloud_id, directory)
    assert cloud.list_keys(bucket) == []
    (line,) = said
    assert re.match(r'^an install interrupted at \d{{4}}-\d\d-\d\d '
                    r'\d\d:\d\d:\d\d UTC \(pid {0}\) had left object '
                    r'{1}/image\.part\.00; removed$'.format(run.pid, bucket),
                    line)
    assert not os.path.exists(path)


def test_a_live_runs_journal_is_left_alone(cloud, cloud_id, directory,
                                           bucket):
    run, path = start_run(cloud_id, directory, bucket, 'alive')
    try:
        said = undo_the_abandoned(cloud, cloud_id, directory)
        assert said == []
        assert cloud.list_keys(bucket) == ['image.part.00']
        assert os.path.exists(path)
    finally:
        run.stdin.close()
        run.stdout.close()
        run.wait()


def test_another_clouds_journal_is_left_alone(cloud, cloud_id, directory,
                                              bucket):
    elsewhere = dict(cloud_id, s3='http://s3.elsewhere.example:8773/')
    path = write_abandoned(directory, elsewhere, {
        'action': 'put-object', 'bucket': bucket, 'key': 'image.part.00'})
    said = undo_the_abandoned(cloud, cloud_id, directory)
    assert said == []
    assert cloud.list_keys(bucket) == ['image.part.00']
    assert os.path.exists(path)


def test_an_unknown_action_is_left_alone(cloud, cloud_id, directory, bucket):
    # A newer version's action, say: whatever it names, nothing is deleted
    # for it -- least of all a bucket, empty once the known action is
    # undone.
    write_abandoned(
        directory, cloud_id,
        {'action': 'created-bucket-v2', 'bucket': bucket},
        {'action': 'put-object', 'bucket': bucket, 'key': 'image.part.00'})
    said = undo_the_abandoned(cloud, cloud_id, directory)
    assert cloud.list_keys(bucket) == []
    assert cloud.bucket_exists(bucket)
    assert len(said) == 1 and said[0].endswith(
        'had left object {0}/image.part.00; removed'.format(bucket))
