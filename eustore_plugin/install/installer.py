# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Installing one image tarball into a cloud: the steps between "here is a
tar.gz" and "here is an emi- id", as one algorithm over an install
strategy (backend.py chooses it: the plugin's own bundler, or euca2ools'):

    the tarball, read once, front to back (gzip allows nothing else)
      -> each member's role judged from its name as it goes by
      -> strategy.start(member): its bundle begins (the built-in bundler
         bundles and uploads it there and then, reading the member as it
         streams by; euca2ools' is given the member's place in a tarball
         on disk and bundles it when finished)
    the tarball's end: its checksums checked, the whole layout checked
      -> kernel, ramdisk, machine image, in that order:
         pending.finish(kernel and ramdisk ids) -> manifest location
         RegisterImage -> id

Nothing is registered before the whole tarball has been read and verified.
Everything created in the cloud goes into the run's :class:`Journal` as it
happens (the strategy journals what it uploads; this module the buckets and
registrations), so the caller can undo it all on failure.
"""

from __future__ import absolute_import

import collections
import logging
import tarfile

from eustore_plugin.cloud.services import CloudError
from eustore_plugin.images.inflate import GzipDataError, TarStream
from eustore_plugin.images.layout import (HVM, ImageLayout, LayoutError,
                                          MemberRef, analyze, provisional_role)
from eustore_plugin.install.journal import (CreatedBucket, Registered,
                                            Registering)
from eustore_plugin.install.plan import BUNDLE_TAGS, ROLES, describe
from eustore_plugin.output import warn
from eustore_plugin.signals import Deferred, Interrupted

LOG = logging.getLogger(__name__)


class TarballMember(collections.namedtuple(
        'TarballMember', 'name size index stream tarball_path file_path')):
    """
    One image file as a strategy gets it: its exact archive name, size,
    position among the archive's members, a stream of its bytes (readable
    only until the next member), the tarball's path when it is a file on
    disk, or the image's own path when it is one (a whole-disk image).
    """
    __slots__ = ()


def install(plan, source, strategy, cloud, journal, report=None):
    """
    Bundle, upload and register the images of the tarball ``source`` (see
    tarball.py) as ``plan`` says, with ``strategy``.  ``report(role, id)``
    is told each id registered.  Returns {role: id} of the images used
    (the user's own kernel and ramdisk included).  On failure the journal is
    left for the caller to undo.
    """
    buckets = _Buckets(cloud, journal)
    if hasattr(source, 'member'):
        pending, layout = _bundle_disk(plan, source, strategy, buckets)
    else:
        pending, members = _bundle_members(plan, source, strategy, buckets)
        layout = analyze(members, hypervisor=plan.hypervisor,
                         virtualization_type=plan.virtualization_type)
        LOG.debug('the tarball\'s layout: %r', layout)
        _check_bundled(plan, layout, pending)
    ids = {'kernel': plan.kernel_id, 'ramdisk': plan.ramdisk_id}
    for role in ROLES:
        if role not in pending:
            continue
        bundle, _ = pending[role]
        kernel_ids = dict(kernel_id=ids['kernel'],
                          ramdisk_id=ids['ramdisk']) if role == 'machine' \
            else {}
        location = bundle.finish(**kernel_ids)
        ids[role] = register(plan, strategy, cloud, journal, role, location,
                             layout.virtualization_type, **kernel_ids)
        if report is not None:
            report(role, ids[role])
    return ids


class _Buckets(object):
    """The buckets of an install, created when first needed (a tarball that
    turns out to be damaged leaves nothing behind)."""

    def __init__(self, cloud, journal):
        self.cloud = cloud
        self.journal = journal
        self._ready = set()

    def ensure(self, bucket):
        if bucket in self._ready:
            return
        if not self.cloud.bucket_exists(bucket):
            # Written down first: an interrupted PUT may still land.
            self.journal.add(CreatedBucket(bucket=bucket))
            self.cloud.create_bucket(bucket)
            LOG.debug('created bucket %s', bucket)
        self._ready.add(bucket)


def _bundle_members(plan, source, strategy, buckets):
    """One pass over the tarball: {role: (pending bundle, member name)} and
    the member list."""
    pending, members = {}, []
    fileobj = source.open()
    try:
        with TarStream(fileobj) as tar:
            for index, info in enumerate(tar):
                members.append(info)
                role = provisional_role(info, plan.hypervisor,
                                        plan.virtualization_type)
                if not plan.wants(role):
                    if role is not None:
                        LOG.debug('not bundling %s (the %s given is used)',
                                  info.name, role)
                    continue
                if role in pending:
                    raise LayoutError(
                        'the tarball holds several {0} files ({1}, {2})'
                        .format(role, pending[role][1], info.name))
                LOG.debug('bundling %s as the %s image', info.name, role)
                buckets.ensure(plan.bucket_for(role))
                member = TarballMember(info.name, info.size, index,
                                       tar.extractfile(info), source.path,
                                       None)
                pending[role] = (strategy.start(member, role, plan),
                                 info.name)
    except (tarfile.TarError, GzipDataError, EOFError, IOError) as err:
        # A damaged download is better named by its checksum.
        source.finish(fileobj)
        raise LayoutError('{0} is not a readable tar.gz ({1})'.format(
            source.label, err))
    source.finish(fileobj)
    return pending, members


def _bundle_disk(plan, source, strategy, buckets):
    """A whole-disk image: the machine image alone, HVM."""
    disk = source.member()
    buckets.ensure(plan.bucket_for('machine'))
    LOG.debug('bundling %s (%d bytes) as an HVM machine image', disk.name,
              disk.size)
    member = TarballMember(disk.name, disk.size, 0, disk.stream, None,
                           disk.file_path)
    pending = {'machine': (strategy.start(member, 'machine', plan),
                           disk.name)}
    source.finish()
    return pending, ImageLayout(MemberRef(disk.name, disk.size), kind=HVM)


def _check_bundled(plan, layout, pending):
    wanted = dict((name, role) for name, role in layout.wanted().items()
                  if plan.wants(role))
    bundled = dict((name, role) for role, (_, name) in pending.items())
    if wanted != bundled:
        raise LayoutError(
            'the tarball\'s layout is not what its member names suggested '
            'while streaming it ({0}); install it from a local copy with -d'
            .format(', '.join(sorted(set(wanted) ^ set(bundled)))))


def register(plan, strategy, cloud, journal, role, location,
             virtualization_type, kernel_id=None, ramdisk_id=None):
    """
    RegisterImage for one bundle.  It is not cut short: an interruption
    while it is in flight waits for the answer (so that the id is known and
    the image can be undone by it), then interrupts.
    """
    params = dict(ImageLocation=location, Name=plan.names[role],
                  Architecture=plan.architecture)
    description = describe(plan, role)
    if description:
        params['Description'] = description
    if role == 'machine':
        params.update((key, value) for key, value in (
            ('KernelId', kernel_id), ('RamdiskId', ramdisk_id),
            ('VirtualizationType', virtualization_type)) if value)
    intent = journal.add(Registering(name=plan.names[role],
                                     location=location))
    with Deferred('finishing the registration in flight') as held:
        try:
            image_id = strategy.register(params)
        except Interrupted:
            raise  # interrupted three times: its outcome is not known
        except Exception as err:
            if getattr(err, 'status_code', None) is not None:
                journal.settled(intent)  # the cloud said no: nothing made
            raise
        journal.settled(intent, Registered(image_id=image_id,
                                           name=plan.names[role]))
        LOG.debug('registered %s as %s', location, image_id)
    if held.received is not None:
        raise Interrupted(held.received, presses=held.count)
    if plan.tags:
        tags = dict(plan.tags)
        tags.update((BUNDLE_TAGS[name], value) for name, value in (
            ('role', role), ('manifest', location), ('kernel-id', kernel_id),
            ('ramdisk-id', ramdisk_id)) if value)
        try:
            cloud.create_tags(image_id, tags)
        except CloudError as err:
            # Clouds without tags still have the description.
            LOG.debug('tagging %s failed (%s)', image_id, err)
            warn('the cloud did not take tags for {0} ({1}); its '
                 'description says where it came from'.format(image_id, err))
    return image_id
