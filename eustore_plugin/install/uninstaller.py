# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Removing one installed image from a cloud: what eustore-install-image put
there for it, and nothing else.

    the machine image, named by id or name among the account's own images,
    which must have come from an image store (installed.py)
      -> its kernel and ramdisk, each only when it is the account's own,
         came from a store, no other image the cloud shows boots with it,
         and the account may deregister kernels (the caller's check)
      -> the bundle of each image to deregister: its manifest (imageLocation,
         else the eustore:manifest tag) and each part the manifest names,
         as far as they exist; never a key found by listing a prefix
      -> or, for an EBS-backed image, its root snapshot (as installed.py
         reads it), when it is the account's and no other of its images
         boots from it

The plan is made first, reading only; :func:`remove` then carries it out
in order (machine image, kernel, ramdisk, then the snapshot, which the
cloud keeps while an image uses it, then each bundle's parts and last its
manifest, so that what is left can still be found from it),
reporting each step as it is done, and stopping at the first failure with
a message that says what was removed and what is left.
"""

from __future__ import absolute_import

import logging

import six

from eustore_plugin.bundle.errors import ManifestError
from eustore_plugin.bundle.manifest import parse_manifest
from eustore_plugin.cloud.services import CloudError
from eustore_plugin.errors import EustoreError, status_of
from eustore_plugin.install.installed import InstalledImage
from eustore_plugin.install.journal import GONE_SNAPSHOT_CODES
from eustore_plugin.signals import Deferred, Interrupted

LOG = logging.getLogger(__name__)

# The images named in a message about what still uses a kernel.
_USERS_SHOWN = 3


class UninstallError(EustoreError):
    pass


class Deregister(object):
    VERB, DONE = 'deregister', 'Deregistered'

    def __init__(self, role, image):
        self.role = role
        self.image = image

    def run(self, cloud):
        cloud.deregister_image(self.image.id)

    def describe(self):
        return u'{0} {1}'.format('image' if self.role == 'machine'
                                 else self.role, self.image.label())


class DeleteObject(object):
    VERB, DONE = 'delete', 'Deleted'

    def __init__(self, bucket, key, manifest):
        self.bucket = bucket
        self.key = key
        self.manifest = manifest  # the bundle's manifest location

    @property
    def location(self):
        return u'{0}/{1}'.format(self.bucket, self.key)

    def run(self, cloud):
        try:
            cloud.delete_object(self.bucket, self.key)
        except CloudError as err:
            if err.status_code != 404:  # already gone: done
                raise

    def describe(self):
        return u'object ' + self.location


class DeleteSnapshot(object):
    VERB, DONE = 'delete', 'Deleted'

    def __init__(self, snapshot_id):
        self.snapshot_id = snapshot_id

    def run(self, cloud):
        try:
            cloud.delete_snapshot(self.snapshot_id)
        except CloudError as err:
            if err.code not in GONE_SNAPSHOT_CODES:  # already gone: done
                raise

    def describe(self):
        return u'snapshot ' + self.snapshot_id


class UninstallPlan(object):
    """
    What removing ``target`` does: ``steps`` (Deregister, DeleteSnapshot
    and DeleteObject, in order), ``kept`` ((role, image id, label, reason)
    of a kernel or ramdisk left in place) and ``notes`` (what could not be
    planned, said to the user: a bundle or snapshot left, and why).
    """

    def __init__(self, target):
        self.target = target
        self.steps = []
        self.kept = []
        self.notes = []

    @property
    def images(self):
        return [step for step in self.steps if isinstance(step, Deregister)]

    @property
    def objects(self):
        return [step for step in self.steps
                if isinstance(step, DeleteObject)]

    @property
    def snapshots(self):
        return [step for step in self.steps
                if isinstance(step, DeleteSnapshot)]


def find_target(own, wanted):
    """
    The account's machine image with the id or name ``wanted`` among
    ``own`` (InstalledImages), if it came from an image store; raises
    UninstallError saying why not otherwise.
    """
    if isinstance(wanted, six.binary_type):  # Python 2's argv
        wanted = wanted.decode('utf-8', 'replace')
    found = [image for image in own if image.id == wanted] or \
        [image for image in own if image.name == wanted]
    if not found:
        raise UninstallError(
            u'no image of this account has the id or name "{0}" (the images '
            'installed from stores are listed by eustore-describe-installed)'
            .format(wanted))
    if len(found) > 1:
        raise UninstallError(
            u'several images of this account are named "{0}" ({1}); give the '
            'id of the one to remove'.format(
                wanted, ', '.join(image.id for image in found)))
    (image,) = found
    if not image.from_store:
        raise UninstallError(
            u'image {0} was not installed from an image store (it has no '
            'eustore tags and no "[eustore: ...]" description), so it is '
            'not removed: eustore-uninstall-image removes only what '
            'eustore-install-image installed'.format(image.label()))
    if image.role != 'machine':
        raise UninstallError(
            u'image {0} is the {1} of installed images, not a machine image; '
            'uninstall the images that use it (eustore-describe-installed '
            'lists them) and it is removed with the last'.format(
                image.label(), image.role))
    return image


def plan_uninstall(cloud, wanted, kernel_refusal):
    """
    The plan to remove the machine image ``wanted`` (an id or a name).
    ``kernel_refusal()`` is asked, only when a kernel or ramdisk could go,
    why the account may not deregister kernels (None when it may).
    Reads only.
    """
    own = [InstalledImage(item)
           for item in cloud.describe_images(owner='self')]
    target = find_target(own, wanted)
    plan = UninstallPlan(target)
    plan.steps.append(Deregister('machine', target))
    by_id = dict((image.id, image) for image in own)
    removed = set([target.id])
    users = _Users(cloud, own, target)
    refusal = []  # asked once

    for role, image_id in (('kernel', target.kernel),
                           ('ramdisk', target.ramdisk)):
        if not image_id:
            continue
        image = by_id.get(image_id)
        label = image.label() if image else image_id
        if image is None:
            reason = 'it is not this account\'s'
        elif not image.from_store:
            reason = 'it was not installed from an image store'
        else:
            reason = None
        if reason is None:
            if not refusal:
                refusal.append(kernel_refusal())
            reason = refusal[0]
        if reason is None:
            others = users.of(image_id, removed)
            if others:
                reason = u'{0} {1} {2} it'.format(
                    'image' if len(others) == 1 else 'images',
                    ', '.join(user.id for user in others[:_USERS_SHOWN]) +
                    (' and {0} more'.format(len(others) - _USERS_SHOWN)
                     if len(others) > _USERS_SHOWN else ''),
                    'uses' if len(others) == 1 else 'use')
        if reason is not None:
            plan.kept.append((role, image_id, label, reason))
            continue
        plan.steps.append(Deregister(role, image))
        removed.add(image.id)

    kept_images = [image for image in own if image.id not in removed]
    for step in list(plan.images):
        if step.image.root_device_type == 'ebs':
            plan.steps.extend(_root_snapshot(cloud, plan, step.image,
                                             kept_images))
        else:
            plan.steps.extend(_bundle_objects(cloud, plan, step.image,
                                              kept_images))
    return plan


class _Users(object):
    """
    Which images the cloud shows boot with a kernel or ramdisk: those it
    says do (kernel-id, ramdisk-id filters; only asked of a cloud that
    reports the kernels of images) and those tagged so by an install
    (eustore:kernel-id, eustore:ramdisk-id).  A cloud that refuses a
    filter is asked for every image it shows instead, once.  The answers
    are checked here too: a cloud may ignore filters.
    """

    def __init__(self, cloud, own, target):
        self.cloud = cloud
        self.own = own
        self.cloud_filters = target.kernel_reported
        self._everything = None

    def of(self, image_id, excluded):
        """Images that boot with ``image_id``, other than the ``excluded``
        ids: all of the account's own, else the first the cloud names."""
        def users(images):
            return [image for image in images
                    if image.uses(image_id) and image.id not in excluded]
        found = users(self.own)
        if found:
            return found
        filters = [{'tag:eustore:kernel-id': [image_id]},
                   {'tag:eustore:ramdisk-id': [image_id]}]
        if self.cloud_filters:
            filters = [{'kernel-id': [image_id]},
                       {'ramdisk-id': [image_id]}] + filters
        for query in filters:
            found = users(self._ask(query))
            if found:
                return found[:1]
        return []

    def _ask(self, filters):
        if self._everything is not None:
            return self._everything
        try:
            return [InstalledImage(item) for item in
                    self.cloud.describe_images(filters=filters)]
        except CloudError as err:
            LOG.debug('the cloud refused DescribeImages with %s (%s); '
                      'asking for every image instead', filters, err)
        self._everything = [InstalledImage(item) for item in
                            self.cloud.describe_images()]
        return self._everything


def _root_snapshot(cloud, plan, image, kept_images):
    """A DeleteSnapshot for the root snapshot of the EBS-backed ``image``,
    when the account has it and no image kept boots from it."""
    what = u'the snapshot of image {0}'.format(image.label())
    if not image.snapshot:
        plan.notes.append(u'{0} is left: the cloud does not say which it '
                          u'is, and it has no eustore:snapshot tag'
                          .format(what))
        return []
    sharing = [other for other in kept_images
               if other.snapshot == image.snapshot]
    if sharing:
        plan.notes.append(u'{0} ({1}) is left: image {2} boots from it too'
                          .format(what, image.snapshot, sharing[0].label()))
        return []
    try:
        found = cloud.describe_snapshots([image.snapshot])
    except CloudError as err:
        if err.code not in GONE_SNAPSHOT_CODES:
            raise
        found = []
    found = [snapshot for snapshot in found
             if snapshot.get('snapshotId') == image.snapshot]
    if not found:
        plan.notes.append(u'{0} ({1}) is already gone'.format(
            what, image.snapshot))
        return []
    owner = found[0].get('ownerId')
    if image.owner and owner and owner != image.owner:
        plan.notes.append(u'{0} ({1}) is left: it is account {2}\'s'
                          .format(what, image.snapshot, owner))
        return []
    return [DeleteSnapshot(image.snapshot)]


def _bundle_objects(cloud, plan, image, kept_images):
    """DeleteObjects for the bundle of ``image``: the parts its manifest
    names that exist, then the manifest."""
    location = image.manifest
    what = u'the bundle of {0} {1}'.format(
        'image' if image.role == 'machine' else image.role, image.label())
    if not location:
        plan.notes.append(u'{0} is left: the cloud does not say where its '
                          u'manifest is, and it has no eustore:manifest '
                          u'tag'.format(what))
        return []
    sharing = [other for other in kept_images if other.manifest == location]
    if sharing:
        plan.notes.append(u'{0} ({1}) is left: image {2} is registered '
                          u'from it too'.format(what, location,
                                                sharing[0].label()))
        return []
    bucket, _, key = location.partition('/')
    if not bucket or not key:
        plan.notes.append(u'{0} is left: its manifest location {1} is not '
                          u'BUCKET/KEY'.format(what, location))
        return []
    if cloud.s3 is None:
        plan.notes.append(u'{0} ({1}) is left: no S3 endpoint is known '
                          u'(give --s3-url or set S3_URL)'.format(
                              what, location))
        return []
    content, _ = cloud.get_object_if_any(bucket, key)
    if content is None:
        plan.notes.append(u'{0} has no objects to delete: its manifest {1} '
                          u'is not in the bucket'.format(what, location))
        return []
    try:
        manifest = parse_manifest(content)
    except ManifestError as err:
        plan.notes.append(u'{0} is left: {1} is not a bundle manifest '
                          u'({2})'.format(what, location, err))
        return []
    prefix = key.rpartition('/')[0] + '/' if '/' in key else ''
    steps = []
    for part in manifest.parts:
        part_key = prefix + part.filename
        if cloud.head_object(bucket, part_key) is None:
            LOG.debug('part %s/%s of %s is already gone', bucket, part_key,
                      location)
            continue
        steps.append(DeleteObject(bucket, part_key, location))
    steps.append(DeleteObject(bucket, key, location))
    return steps


def remove(plan, cloud, report):
    """
    Carry out ``plan``, telling ``report(step)`` each step done.  Signals
    wait for the removal to finish (a third one stops it); a failure or
    that stop raises UninstallError (Interrupted) saying what was removed
    and what is left.
    """
    done = []
    steps = plan.steps
    try:
        with Deferred('finishing the removal'):
            for step in steps:
                LOG.debug('removing %s', step.describe())
                try:
                    step.run(cloud)
                except Exception as err:
                    LOG.debug('removing %s failed', step.describe(),
                              exc_info=True)
                    raise UninstallError(left_message(
                        u'could not {0} {1} ({2})'.format(
                            step.VERB, step.describe(), six.text_type(err)),
                        done, steps[len(done):]), status_of(err))
                done.append(step)
                report(step)
    except Interrupted as err:
        raise Interrupted(err.signum, left_message(
            u'interrupted', done, steps[len(done):]))
    return done


def summarize(steps):
    """The steps, in short: images and snapshots one by one, objects
    counted by bundle."""
    images = [step.describe() for step in steps
              if isinstance(step, (Deregister, DeleteSnapshot))]
    bundles = []
    counts = {}
    for step in steps:
        if isinstance(step, DeleteObject):
            if step.manifest not in counts:
                bundles.append(step.manifest)
            counts[step.manifest] = counts.get(step.manifest, 0) + 1
    objects = [u'{0} object{1} of the bundle {2}'.format(
        counts[manifest], '' if counts[manifest] == 1 else 's', manifest)
        for manifest in bundles]
    return u', '.join(images + objects)


def left_message(message, done, left):
    return u'{0}; removed: {1}; left: {2}'.format(
        message, summarize(done) or 'nothing', summarize(left) or 'nothing')
