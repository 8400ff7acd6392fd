# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Installing one image into a cloud: the steps between "here is a store's
image" and "here is an emi- id", as one algorithm from a source
(sources.py: a tarball or a whole-disk image) to a target (target.py:
where the image goes, an instance-store bundle today):

    a tarball, read once, front to back (gzip allows nothing else)
      -> each member's role judged from its name as it goes by
      -> target.start(member): storing it begins (the built-in bundler
         bundles and uploads it there and then, reading the member as it
         streams by; euca2ools' is given the member's place in a tarball
         on disk and bundles it when finished)
    the tarball's end: its checksums checked, the whole layout checked
    (a whole-disk image: one member, the machine image, HVM)
      -> kernel, ramdisk, machine image, in that order:
         pending.finish(kernel and ramdisk ids) -> Stored
         RegisterImage (the Stored's parameters and the plan's) -> id

Nothing is registered before the whole image has been read and verified.
Everything created in the cloud goes into the run's :class:`Journal` as it
happens (the target journals what it stores; this module the
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
from eustore_plugin.install.journal import Registered, Registering
from eustore_plugin.install.plan import BUNDLE_TAGS, ROLES, describe
from eustore_plugin.install.sources import DISK, TARBALL
from eustore_plugin.output import warn
from eustore_plugin.signals import Deferred, Interrupted

LOG = logging.getLogger(__name__)


class ImageMember(collections.namedtuple(
        'ImageMember', 'name size index stream tarball_path file_path')):
    """
    One image file as a target gets it: its exact name (in the archive),
    size, position among the archive's members, a stream of its bytes
    (readable once, front to back; in a tarball only until the next
    member), the tarball's path when it is a file on disk, or the image's
    own path when it is one (a whole-disk image).
    """
    __slots__ = ()


def install(plan, source, target, cloud, journal, report=None):
    """
    Store and register the images of ``source`` as ``plan`` says, with
    ``target``.  ``report(role, id, stored)`` is told each id registered
    and its target.Stored.  Returns
    {role: id} of the images used (the user's own kernel and ramdisk
    included).  On failure the journal is left for the caller to undo.
    """
    pending, layout = _STORE_BY_KIND[source.kind](plan, source, target)
    ids = {'kernel': plan.kernel_id, 'ramdisk': plan.ramdisk_id}
    for role in ROLES:
        if role not in pending:
            continue
        image, _ = pending[role]
        kernel_ids = dict(kernel_id=ids['kernel'],
                          ramdisk_id=ids['ramdisk']) if role == 'machine' \
            else {}
        stored = image.finish(**kernel_ids)
        ids[role] = register(plan, target, cloud, journal, role, stored,
                             layout.virtualization_type, **kernel_ids)
        if report is not None:
            report(role, ids[role], stored)
    return ids


def _store_members(plan, source, target):
    """
    One pass over a tarball: each member the plan wants started on the
    target as it streams by; then the whole layout checked.  Returns
    ({role: (pending image, member name)}, layout).
    """
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
                member = ImageMember(info.name, info.size, index,
                                     tar.extractfile(info), source.path,
                                     None)
                pending[role] = (target.start(member, role, plan),
                                 info.name)
    except (tarfile.TarError, GzipDataError, EOFError, IOError) as err:
        # A damaged download is better named by its checksum.
        source.finish(fileobj)
        raise LayoutError('{0} is not a readable tar.gz ({1})'.format(
            source.label, err))
    source.finish(fileobj)
    layout = analyze(members, hypervisor=plan.hypervisor,
                     virtualization_type=plan.virtualization_type)
    LOG.debug('the tarball\'s layout: %r', layout)
    _check_stored(plan, layout, pending)
    target.accepts(plan, layout)
    return pending, layout


def _store_disk(plan, source, target):
    """A whole-disk image: the machine image alone, HVM."""
    disk = source.member()
    layout = ImageLayout(MemberRef(disk.name, disk.size), kind=HVM)
    target.accepts(plan, layout)
    LOG.debug('bundling %s (%d bytes) as an HVM machine image', disk.name,
              disk.size)
    member = ImageMember(disk.name, disk.size, 0, disk.stream, None,
                         disk.file_path)
    pending = {'machine': (target.start(member, 'machine', plan),
                           disk.name)}
    source.finish()
    return pending, layout


_STORE_BY_KIND = {TARBALL: _store_members, DISK: _store_disk}


def _check_stored(plan, layout, pending):
    wanted = dict((name, role) for name, role in layout.wanted().items()
                  if plan.wants(role))
    stored = dict((name, role) for role, (_, name) in pending.items())
    if wanted != stored:
        raise LayoutError(
            'the tarball\'s layout is not what its member names suggested '
            'while streaming it ({0}); install it from a local copy with -d'
            .format(', '.join(sorted(set(wanted) ^ set(stored)))))


def register(plan, target, cloud, journal, role, stored,
             virtualization_type, kernel_id=None, ramdisk_id=None):
    """
    RegisterImage for one stored image (``stored``: target.Stored).  It is
    not cut short: an interruption while it is in flight waits for the
    answer (so that the id is known and the image can be undone by it),
    then interrupts.
    """
    location = stored.location
    params = dict(stored.params, Name=plan.names[role],
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
            image_id = target.register(params)
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
        tags = dict(plan.tags, **stored.tags)
        tags.update((BUNDLE_TAGS[name], value) for name, value in (
            ('role', role), ('kernel-id', kernel_id),
            ('ramdisk-id', ramdisk_id)) if value)
        try:
            cloud.create_tags(image_id, tags)
        except CloudError as err:
            # Clouds without tags still have the description.
            LOG.debug('tagging %s failed (%s)', image_id, err)
            warn('the cloud did not take tags for {0} ({1}); its '
                 'description says where it came from'.format(image_id, err))
    return image_id
