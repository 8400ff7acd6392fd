# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The plugin's own instance-store target (target.py): its BundleWriter, its
requests.

Each member is bundled as it streams out of the tarball; finished parts go
up ``upload_concurrency`` at a time, in the order they finish, while later
ones are still being compressed.  Part files on disk are bounded: the
writer may hold ``pending`` finished parts that no upload has taken yet,
plus the one it is writing, plus one per upload under way, so at most
(concurrency + pending + 1) x part size.  The manifest is written after
every part is up, so it can name a kernel and ramdisk registered meanwhile.
"""

from __future__ import absolute_import

import ctypes
import ctypes.util
import logging
import os
import sys
import threading

import six
from six.moves import queue

from eustore_plugin.bundle.writer import DEFAULT_PART_SIZE, BundleWriter
from eustore_plugin.cloud.client import BUNDLE_ACL
from eustore_plugin.errors import EustoreError, status_of
from eustore_plugin.install.journal import PutObject
from eustore_plugin.install.target import RunBuckets, bundle_stored
from eustore_plugin.store.download import CountingReader

LOG = logging.getLogger(__name__)

# Behind 40 ms per request and 5 MB/s per connection, 8 uploads at once
# are 3.9x faster than one (4 were 2.9x): benchmarks/install.py --link
# --rate-mb 5.  Parts on disk: up to (8 + 2 + 1) x 10 MiB.
DEFAULT_UPLOAD_CONCURRENCY = 8
# Finished parts that may wait for an upload to take them.
DEFAULT_PENDING_PARTS = 2
# Attempts per part (requestbuilder also retries a 500 or 503 itself).
PART_ATTEMPTS = 3
# How often a waiting thread wakes up: lets Ctrl-C through on Python 2.
_POLL_SECONDS = 0.5
# glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8
# Arenas for the install's threads (see limit_malloc_arenas).
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas=MALLOC_ARENAS):
    """
    Have glibc share ``arenas`` malloc arenas among the threads to come,
    rather than give each its own (up to eight per core).  The install's
    threads (inflate, deflate workers, output, uploads) free megabyte
    buffers that others allocated, which leaves free but unreturned memory
    in every arena: peak RSS was 82.7 MB at 256 MiB and 98.9 MB at 4 GiB
    with glibc's default, 76.2 and 93.3 MB with two arenas, at the same
    speed (benchmarks/install.py --sizes 256,4096).  An explicit
    MALLOC_ARENA_MAX wins; elsewhere than glibc this does nothing.
    """
    if os.environ.get('MALLOC_ARENA_MAX') or not sys.platform.startswith(
            'linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # a libc without mallopt
        return False


class BuiltinBundleTarget(object):
    """Bundles with BundleWriter; uploads and registers through Cloud."""

    needs_local_file = False

    def __init__(self, cloud, credentials, journal, workdir,
                 acl=BUNDLE_ACL,
                 upload_concurrency=DEFAULT_UPLOAD_CONCURRENCY,
                 part_size=DEFAULT_PART_SIZE, progress=None,
                 writer_options=None):
        self.cloud = cloud
        self.credentials = credentials
        self.journal = journal
        self.workdir = workdir
        self.acl = acl
        self.upload_concurrency = max(1, upload_concurrency)
        self.part_size = part_size
        self.progress = progress
        self.writer_options = writer_options or {}
        self.buckets = RunBuckets(cloud, journal)
        limit_malloc_arenas()

    def start(self, member, role, plan):
        """Bundle and upload one member now; returns its PendingManifest."""
        bucket = plan.bucket_for(role)
        self.buckets.ensure(bucket)
        creds = self.credentials
        writer = BundleWriter(
            plan.names[role], role, plan.architecture, creds.account_id,
            creds.certificate, creds.private_key, creds.cloud_certificate,
            part_size=self.part_size, workdir=self.workdir,
            max_pending_parts=DEFAULT_PENDING_PARTS +
            self.upload_concurrency, **self.writer_options)
        source = CountingReader(member.stream)
        bar = self.progress('bundling {0}'.format(role), member.size) \
            if self.progress else None
        uploads = PartUploads(self.cloud, self.journal, writer, bucket,
                              plan.key, self.upload_concurrency, self.acl)
        try:
            for part in writer.bundle(source, member.size, hold_parts=True):
                uploads.submit(part)
                if bar is not None:
                    bar.update(source.size)
            uploads.wait()
        except BaseException:
            uploads.cancel()
            raise
        finally:
            uploads.close()
        if bar is not None:
            bar.finish()
        return PendingManifest(self, writer, role, bucket, plan.key)

    def accepts(self, plan, layout):
        """Every layout bundles."""

    def register(self, params):
        return self.cloud.register_image(**params)

    def quiesce(self):
        """Nothing to wait for: every upload has ended when start() has."""


class PendingManifest(object):
    """A bundle whose parts are uploaded and whose manifest is not yet."""

    def __init__(self, target, writer, role, bucket, key_for):
        self._target = target
        self._writer = writer
        self._role = role
        self.bucket = bucket
        self._key_for = key_for

    def finish(self, kernel_id=None, ramdisk_id=None):
        """Write and upload the manifest; returns its target.Stored."""
        if self._role == 'kernel':
            # What older clouds read to tell a kernel or ramdisk, besides
            # <image><type> (docs/formats.md, "kernel and ramdisk
            # manifests").
            kernel_id = 'true'
        elif self._role == 'ramdisk':
            ramdisk_id = 'true'
        manifest = self._writer.manifest(kernel_id=kernel_id,
                                         ramdisk_id=ramdisk_id)
        key = self._key_for(self._writer.manifest_filename)
        self._target.journal.add(PutObject(bucket=self.bucket, key=key))
        self._target.cloud.put_object(self.bucket, key, manifest,
                                      acl=self._target.acl)
        return bundle_stored('{0}/{1}'.format(self.bucket, key))


class PartUploads(object):
    """
    Parts on their way up: ``submit`` hands one to the next free upload
    (waiting while all are busy) and returns; ``wait`` returns when all are
    up.  The first failure stops the rest and is raised (by ``submit`` or
    ``wait``) after a part has been tried PART_ATTEMPTS times.  Each part's
    key is journalled before it is sent, by the thread that submits it.
    """

    def __init__(self, cloud, journal, writer, bucket, key_for, concurrency,
                 acl=BUNDLE_ACL):
        self.cloud = cloud
        self.acl = acl
        self.journal = journal
        self.writer = writer
        self.bucket = bucket
        self.key_for = key_for
        self._slots = threading.Semaphore(concurrency)
        self._jobs = queue.Queue()
        self._errors = []
        self._cancelled = False
        self._in_flight = 0
        self._idle = threading.Condition()
        self._threads = []
        for number in range(concurrency):
            thread = threading.Thread(target=self._work,
                                      name='part-upload-{0}'.format(number))
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def submit(self, part):
        self._raise_failure()
        while not self._slots.acquire(False):
            self._raise_failure()
            with self._idle:
                self._idle.wait(_POLL_SECONDS)
        key = self.key_for(part.filename)
        self.journal.add(PutObject(bucket=self.bucket, key=key))
        with self._idle:
            self._in_flight += 1
        self._jobs.put((part, key))

    def wait(self):
        with self._idle:
            while self._in_flight and not self._errors:
                self._idle.wait(_POLL_SECONDS)
        self._raise_failure()

    def cancel(self):
        """Send no more parts (the install is failing anyway)."""
        self._cancelled = True

    def close(self):
        """Stop the uploads, after those under way have ended (so that
        nothing lands after an undo has removed it)."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            while thread.is_alive():
                thread.join(_POLL_SECONDS)

    def _raise_failure(self):
        if self._errors:
            six.reraise(*self._errors[0])

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            part, key = job
            try:
                if not (self._errors or self._cancelled):
                    self._upload(part, key)
            except BaseException:  # pylint: disable=broad-except
                self._errors.append(sys.exc_info())
            finally:
                self.writer.release(part)
                self._slots.release()
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()

    def _upload(self, part, key):
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                self.cloud.put_file(self.bucket, key, part.path, self.acl)
                LOG.debug('uploaded %s/%s (%d bytes)', self.bucket, key,
                          part.size)
                return
            except EustoreError as err:
                status = status_of(err)
                retriable = status is None or status >= 500
                if not retriable or attempt == PART_ATTEMPTS:
                    raise
                LOG.debug('upload of %s failed (%s); attempt %d of %d', key,
                          err, attempt + 1, PART_ATTEMPTS)
