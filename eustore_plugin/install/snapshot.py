# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A whole-disk image written into a new EBS snapshot through the EBS direct
APIs (cloud/ebs.py), as it streams by:

    StartSnapshot (the volume: the image rounded up to whole GiB), journalled
    -> the disk read once, front to back, in 512 KiB blocks (whatever the
       stream's own read sizes); all-zero blocks skipped (they read as
       zeros anyway); each other block's SHA-256, and PutSnapshotBlock,
       ``concurrency`` blocks in flight, retried on what AWS asks clients
       to retry, within a count and a time budget
    -> CompleteSnapshot with the count of blocks written and the SHA-256 of
       their checksums in block order (which AWS checks)
    -> DescribeSnapshots until the snapshot is completed (bounded)

Memory is bounded: the blocks read and not yet sent are at most
``concurrency`` + PENDING_BLOCKS (12 MiB at 16), in an UploadPool
(uploads.py).  The snapshot's id is in the journal before its first
block, and whether a StartSnapshot cut short by a signal or a kill made
one is found by the client token it is tagged with, so undoing the
journal (or the next install, after a kill) deletes it.  StartSnapshot's
Timeout is left at AWS's hour: a snapshot a killed run left pending is
cancelled then, and deleted by the next install's undo either way.
"""

from __future__ import absolute_import, division

import base64
import collections
import hashlib
import logging
import random
import time
import uuid

import six

from eustore_plugin.bundle.errors import ImageSourceError
from eustore_plugin.bundle.tarstream import read_exactly
from eustore_plugin.cloud.ebs import (BLOCK_SIZE, MAX_VOLUME_SIZE,
                                      NoEbsDirectError)
from eustore_plugin.cloud.services import CloudError
from eustore_plugin.errors import EustoreError, status_of
from eustore_plugin.install.journal import (CLIENT_TOKEN_TAG,
                                            GONE_SNAPSHOT_CODES,
                                            CreatedSnapshot, StartingSnapshot)
from eustore_plugin.install.uploads import UploadPool
from eustore_plugin.signals import Deferred, Interrupted

LOG = logging.getLogger(__name__)

GIB = 1024 ** 3
# Blocks in flight.  Behind 40 ms per request and 25 MB/s per connection,
# 16 at once were 7.0x faster than one at a time (24: 7.4x, 32: 6.9x, 48:
# 5.7x; best of 3, benchmarks/snapshot.py --link --link-mib 256): past 16
# the CPU of moto and of the 2 cores' other tenants is the limit, not the
# link.  Each one holds a 512 KiB block; on AWS, at about 100 ms a block,
# 16 carry some 80 MB/s.
DEFAULT_CONCURRENCY = 16
# Blocks read and waiting for an upload to take them: what keeps the
# uploads busy while the source has a slow moment.
PENDING_BLOCKS = 8
# What AWS asks clients to retry (besides 5xx and failed connections);
# ResourceNotFoundException too, for blocks: a snapshot just started may
# not take blocks for a minute or two (the EBS team's advice to coldsnap).
RETRIED_CODES = ('ThrottlingException', 'RequestThrottledException',
                 'ConcurrentLimitExceededException', 'InternalServerException',
                 'ServiceUnavailableException')
BLOCK_RETRIED_CODES = RETRIED_CODES + ('ResourceNotFoundException',)


class RetryPolicy(collections.namedtuple(
        'RetryPolicy', 'attempts budget first_delay max_delay')):
    """
    Retries of one request: at most ``attempts`` in all, none starting
    later than ``budget`` seconds after the first, waiting between them
    ``first_delay`` seconds, doubling up to ``max_delay``, each wait
    between half and all of that (jitter, so that blocks throttled
    together do not come back together).
    """
    __slots__ = ()

    def delay(self, attempt):
        """The wait after the ``attempt``-th attempt failed."""
        longest = min(self.max_delay, self.first_delay * 2 ** (attempt - 1))
        return longest / 2 + random.random() * longest / 2


# 12 attempts within 150 s ride out the two minutes a new snapshot may
# refuse blocks; no request is retried for ever (a client that does was
# seen to hang for tens of minutes outside EC2).
DEFAULT_RETRY = RetryPolicy(attempts=12, budget=150.0, first_delay=0.5,
                            max_delay=20.0)
# How long CompleteSnapshot's snapshot may stay pending.
COMPLETION_TIMEOUT = 30 * 60.0
_COMPLETION_POLL = (1.0, 15.0)  # first and longest wait between looks


class Snapshot(collections.namedtuple(
        'Snapshot', 'id volume_size blocks checksum')):
    """A completed snapshot: its id, size in GiB, the number of blocks
    written, and their aggregate checksum (base64 SHA-256, linear)."""
    __slots__ = ()


def volume_size(image_size, requested=None):
    """
    The volume size in GiB for an image of ``image_size`` bytes: the image
    rounded up to whole GiB (at least 1), or ``requested`` when given and
    large enough.
    """
    needed = max(1, -(-image_size // GIB))
    if requested is None:
        size = needed
    elif requested < needed:
        raise EustoreError(
            'a volume of {0} GiB cannot hold the image ({1} bytes): give at '
            'least {2} GiB, or leave the volume size out'.format(
                requested, image_size, needed))
    else:
        size = requested
    if size > MAX_VOLUME_SIZE:
        raise EustoreError('EBS volumes hold at most {0} GiB; the image '
                           'needs {1}'.format(MAX_VOLUME_SIZE, size))
    return size


def data_blocks(stream, size, progress=None):
    """
    (index, block) of each 512 KiB block of the ``size`` bytes read from
    ``stream`` that holds anything but zeros, the last one padded with
    zeros.  ``progress(bytes read)`` is told after each block.  Raises
    ImageSourceError when the stream holds fewer or more bytes than that.
    """
    zeros = b'\0' * BLOCK_SIZE
    done = 0
    index = 0
    while done < size:
        want = min(BLOCK_SIZE, size - done)
        try:
            block = read_exactly(stream.read, want)
        except (IOError, OSError) as err:
            raise ImageSourceError('reading the image failed after {0} of '
                                   '{1} bytes: {2}'.format(done, size, err))
        done += len(block)
        if len(block) < want:
            raise ImageSourceError(
                'the image ended after {0} bytes but {1} were declared; the '
                'image file or download is truncated'.format(done, size))
        if want < BLOCK_SIZE:
            block += zeros[want:]
        # Comparing with zeros is a memcmp: cheap next to hashing a block.
        if block != zeros:
            yield index, block
        index += 1
        if progress is not None:
            progress(done)
    try:
        extra = stream.read(1)
    except (IOError, OSError) as err:
        raise ImageSourceError('reading the image failed after {0} bytes: '
                               '{1}'.format(size, err))
    if extra:
        raise ImageSourceError('the image holds more than the {0} bytes '
                               'declared; declare its real size'.format(size))


def retried(err, codes=RETRIED_CODES):
    """Whether a failed request is worth another attempt: no answer, a
    server's failure (but 501, "not implemented": never), or a code in
    ``codes``."""
    if not isinstance(err, EustoreError) or isinstance(err, NoEbsDirectError):
        return False
    status = status_of(err)
    return status is None or (status >= 500 and status != 501) or \
        status == 429 or getattr(err, 'code', None) in codes


def call_with_retries(call, policy, what, codes=RETRIED_CODES, wait=None):
    """
    ``call()``, retried as ``policy`` allows while it fails with what is
    worth retrying.  ``wait(seconds)`` waits between attempts (time.sleep
    unless given) and returns True when the caller wants no more of them;
    the last failure is raised then.
    """
    started = time.time()
    attempt = 1
    while True:
        try:
            return call()
        except Exception as err:
            if not retried(err, codes) or attempt >= policy.attempts:
                raise
            delay = policy.delay(attempt)
            if time.time() + delay - started > policy.budget:
                raise
            LOG.debug('%s failed (%s); attempt %d of %d in %.1f s', what,
                      err, attempt + 1, policy.attempts, delay)
            if wait is None:
                time.sleep(delay)
            elif wait(delay):
                raise
        attempt += 1


class SnapshotWriter(object):
    """
    Writes disks into new snapshots through ``ebs`` (an EbsDirect), and
    looks at them and deletes them through ``cloud`` (a Cloud, EC2);
    what it creates goes into ``journal``.  ``progress(label, total)``,
    when given, makes a progress bar (update(done), finish()).
    """

    def __init__(self, ebs, cloud, journal, concurrency=DEFAULT_CONCURRENCY,
                 retry=DEFAULT_RETRY, progress=None,
                 completion_timeout=COMPLETION_TIMEOUT):
        self.ebs = ebs
        self.cloud = cloud
        self.journal = journal
        self.concurrency = max(1, concurrency)
        self.retry = retry
        self.progress = progress
        self.completion_timeout = completion_timeout
        ebs.allow_connections(self.concurrency)

    def write(self, stream, size, volume_gib=None, description=None,
              tags=None, label='snapshot'):
        """
        A completed snapshot of the ``size`` bytes of ``stream`` (read
        once, front to back), of ``volume_gib`` GiB (the image rounded up
        when not given), with ``description`` and ``tags``.  On failure the
        snapshot is in the journal for the caller to undo.  Called on the
        main thread: StartSnapshot holds signals back (signals.Deferred).
        """
        gib = volume_size(size, volume_gib)
        snapshot_id = self._start(gib, description, tags)
        bar = self.progress(label, size) if self.progress else None
        aggregate = hashlib.sha256()
        blocks = 0
        with UploadPool(
                lambda job, stopping: self._put(snapshot_id, job, stopping),
                self.concurrency, self.concurrency + PENDING_BLOCKS,
                name='block-upload') as uploads:
            for index, block in data_blocks(
                    stream, size, bar.update if bar is not None else None):
                digest = hashlib.sha256(block).digest()
                aggregate.update(digest)
                uploads.submit((index, block, _b64(digest)))
                blocks += 1
            uploads.wait()
        if bar is not None:
            bar.finish()
        checksum = _b64(aggregate.digest())
        status = call_with_retries(
            lambda: self.ebs.complete_snapshot(snapshot_id, blocks, checksum),
            self.retry, 'CompleteSnapshot of ' + snapshot_id)
        LOG.debug('completing %s: %d blocks of %d written (%s)', snapshot_id,
                  blocks, -(-size // BLOCK_SIZE), status)
        self.wait_until_completed(snapshot_id)
        return Snapshot(snapshot_id, gib, blocks, checksum)

    def _put(self, snapshot_id, job, stopping):
        index, block, checksum = job
        call_with_retries(
            lambda: self.ebs.put_block(snapshot_id, index, block, checksum),
            self.retry, 'block {0} of {1}'.format(index, snapshot_id),
            BLOCK_RETRIED_CODES, stopping.wait)

    def _start(self, gib, description, tags):
        """
        StartSnapshot, journalled: its client token before it is sent, its
        snapshot's id as soon as it answers.  The token stays in the
        journal (undoing it deletes every snapshot tagged with it): a
        cloud that ignores tokens (moto) makes a snapshot per attempt.
        """
        token = uuid.uuid4().hex
        tags = dict(tags or {}, **{CLIENT_TOKEN_TAG: token})
        self.journal.add(StartingSnapshot(client_token=token))

        def attempt():
            # An interruption waits for the answer, so that the snapshot's
            # id is in the journal, then stops the retries.
            with Deferred('finishing the StartSnapshot in flight') as held:
                try:
                    answer = self.ebs.start_snapshot(gib, token, description,
                                                     tags)
                except Exception:
                    if held.received is None:
                        raise
                else:
                    self.journal.add(CreatedSnapshot(
                        snapshot_id=answer['SnapshotId']))
            if held.received is not None:
                raise Interrupted(held.received, presses=held.count)
            return answer

        answer = call_with_retries(attempt, self.retry, 'StartSnapshot')
        LOG.debug('started snapshot %s of %d GiB', answer['SnapshotId'], gib)
        return answer['SnapshotId']

    def wait_until_completed(self, snapshot_id):
        """Look at the snapshot until EC2 says it is completed; raises
        EustoreError when it fails or is still pending after
        ``completion_timeout`` seconds."""
        deadline = time.time() + self.completion_timeout
        pause, longest = _COMPLETION_POLL
        while True:
            try:
                found = call_with_retries(
                    lambda: self.cloud.describe_snapshots([snapshot_id]),
                    self.retry, 'DescribeSnapshots of ' + snapshot_id)
            except CloudError as err:
                # Just made: EC2 may not show it yet.
                if err.code not in GONE_SNAPSHOT_CODES:
                    raise
                found = []
            state = dict(found[0]) if found else {}
            status = state.get('status')
            if status == 'completed':
                return
            if status == 'error':
                raise EustoreError(
                    'the snapshot {0} failed ({1}); the image is not '
                    'installed'.format(snapshot_id, ' '.join(six.text_type(
                        state.get('statusMessage') or 'the cloud says no '
                        'more').split())))
            if time.time() + pause > deadline:
                raise EustoreError(
                    'the snapshot {0} was not completed within {1:.0f} '
                    'minutes (status {2}, progress {3}); the image is not '
                    'installed'.format(snapshot_id,
                                       self.completion_timeout / 60,
                                       status or 'unknown',
                                       state.get('progress') or 'unknown'))
            LOG.debug('snapshot %s is %s (%s); looking again in %.0f s',
                      snapshot_id, status, state.get('progress'), pause)
            time.sleep(pause)
            pause = min(longest, pause * 2)


def _b64(digest):
    return base64.b64encode(digest).decode('ascii')
