# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Carrying out an install once its checks have passed (preflight.py): a
journal and a work area for the run, the target opened, the image's source
opened, the installer run from one to the other; on any failure or
interruption, everything the run created undone, and one line saying what
happened.  What it returns, or a reuse, is an :class:`InstallResult`.
"""

from __future__ import absolute_import

import sys

import six

from eustore_plugin.install.installed import InstalledImage
from eustore_plugin.install.installer import install
from eustore_plugin.install.journal import Journal
from eustore_plugin.install.plan import BUNDLE_TAGS, ROLES, InstallError
from eustore_plugin.install.sources import image_source
from eustore_plugin.install.workarea import WorkArea
from eustore_plugin.output import warn
from eustore_plugin.signals import (Deferred, Interrupted, presses_of,
                                    signal_number)
from eustore_plugin.store.download import FileChangedError


class InstallResult(object):
    """
    What an install did: the ids it registered by role (``registered``), or
    the installed image it reused (``reused``: DescribeImages' answer for
    it), as the command prints it and as --json gives it.
    """

    def __init__(self, plan, registered=None, reused=None,
                 credentials=None, locations=None):
        self.plan = plan
        self.registered = dict(registered or {})
        self.reused = reused
        self.credentials = credentials  # install.bundlekeys'
        # {role: where it was stored}: a manifest, an EBS snapshot's id.
        self.locations = dict(locations or {})

    def lines(self):
        if self.reused is not None:
            return [u'Reused installed image {0}'.format(
                self.reused.get('imageId'))]
        if self.plan.ebs:
            return [u'Installed new EBS-backed image {0} (snapshot {1})'
                    .format(self.registered['machine'],
                            self.locations.get('machine'))]
        return [u'Installed new {0} {1}'.format(
            'image' if role == 'machine' else role, self.registered[role])
            for role in ROLES if role in self.registered]

    def to_json(self):
        """
        The ids by role, the names, the bucket and key prefix, the
        manifests (an EBS-backed image's: the root device type and the
        snapshot), where the image came from, and whether an installed
        image was reused (-y).
        """
        plan = self.plan
        if plan.ebs:
            return self._ebs_json()
        ids, names, manifests = {}, {}, {}
        if self.reused is not None:
            described = self.reused
            # What the cloud says, else the tags install wrote for clouds
            # that do not say.
            tags = dict((tag.get('key'), tag.get('value'))
                        for tag in described.get('tagSet') or []
                        if isinstance(tag, dict))
            ids['machine'] = described.get('imageId')
            names['machine'] = described.get('name') or \
                plan.names['machine']
            location = described.get('imageLocation') or \
                tags.get(BUNDLE_TAGS['manifest'])
            if location:
                manifests['machine'] = location
            for role, field in (('kernel', 'kernelId'),
                                ('ramdisk', 'ramdiskId')):
                found = described.get(field) or \
                    tags.get(BUNDLE_TAGS[role + '-id'])
                if found:
                    ids[role] = found
        else:
            for role, image_id in self.registered.items():
                ids[role] = image_id
                if plan.wants(role):
                    names[role] = plan.names[role]
                    manifests[role] = plan.manifest_location(role)
            if plan.kernel_id:  # the user's own (--kernel, --ramdisk)
                ids.update(kernel=plan.kernel_id, ramdisk=plan.ramdisk_id)
        result = {'ids': ids, 'names': names, 'bucket': plan.bucket,
                  'key_prefix': plan.key_prefix, 'manifests': manifests,
                  'source': plan.source, 'reused': self.reused is not None}
        fetched = self.credentials and \
            self.credentials.fetched_certificate()
        if fetched:
            result['cloud_certificate'] = fetched
        return result

    def _ebs_json(self):
        result = dict(self.plan.summary(), reused=self.reused is not None)
        if self.reused is not None:
            found = InstalledImage(self.reused)
            result['ids'] = {'machine': found.id}
            result['names'] = {'machine': found.name}
            result['snapshot'] = found.snapshot
        else:
            result['ids'] = dict(self.registered)
            result['snapshot'] = self.locations.get('machine')
        return result


def carry_out(context, fetch, progress=None, settings=None, debug=False):
    """
    Install what the checked ``context`` (preflight.InstallContext) plans,
    reading the store through ``fetch`` (sources.Fetch); ``progress`` makes
    progress bars; ``settings`` (target.RequestSettings) builds a target's
    own requests.  Returns an InstallResult; raises InstallError (or
    Interrupted) saying what happened, after undoing what the run created.

    A file replaced on the store while it streamed into the target (an
    operator publishing again) is not the user's to deal with: what the run
    made is undone, and it starts over once from the beginning.
    """
    for attempt in range(1, STARTS + 1):
        try:
            return _attempt(context, fetch, progress, settings, debug,
                            last=attempt == STARTS)
        except _StartOver as again:
            warn(u'{0}; removed what this run had made, and starting over '
                 u'from the beginning'.format(again))


# How many times an install starts from the beginning, at most.
STARTS = 2


class _StartOver(Exception):
    """The file changed under the install, which undid itself."""


def _attempt(context, fetch, progress, settings, debug, last):
    cloud, plan = context.cloud, context.plan
    journal = Journal(cloud.identity(context.account_id))
    registered, locations = {}, {}

    def report(role, image_id, stored):
        registered[role] = image_id
        locations[role] = stored.location
    with WorkArea(context.options.directory) as area:
        target = context.kind.open(cloud, context.credentials, journal,
                                   area.run_dir, progress, settings)
        try:
            source = image_source(fetch, plan, context.image, area,
                                  target.needs_local_file,
                                  local_tarball=context.options.tarball)
            install(plan, source, target, cloud, journal,
                    report=report)
        except FileChangedError as err:
            target.quiesce()
            left = None if last else undo(cloud, journal, err)
            if last or left:
                roll_back(cloud, journal, err, debug, left)
            raise _StartOver(_without_advice(six.text_type(err)))
        except BaseException as err:
            target.quiesce()
            roll_back(cloud, journal, err, debug)
        journal.finish()
    return InstallResult(plan, registered, credentials=context.credentials,
                         locations=locations)


def _without_advice(message):
    """A FileChangedError's message without its "run the command again"
    (the install does so itself)."""
    return message.replace('; run the command again', '')


def undo(cloud, journal, err):
    """
    Undo what the run created, not cut short by a second Ctrl-C (the first
    one being the one that started it, if one did); a third stops it, and
    what is left is said exactly and kept for the next run.  Returns the
    descriptions of what could not be removed.
    """
    interrupted = isinstance(err, KeyboardInterrupt)
    try:
        with Deferred('removing what this run created',
                      presses=presses_of(err) if interrupted else 0):
            return journal.undo(cloud)
    except Interrupted as again:
        journal.keep()
        left = [action.describe() for action in journal.pending()]
        raise Interrupted(again.signum, left_over_message(
            'interrupted while removing what this run created', left,
            journal))


def roll_back(cloud, journal, err, debug=False, left=None):
    """
    Undo what the run created (:func:`undo`, unless done already and
    ``left`` is what it left), then fail with one clear line (exit 128 +
    the signal when interrupted; ``err`` itself with ``debug``).
    """
    exc_info = sys.exc_info()
    interrupted = isinstance(err, KeyboardInterrupt)
    created = not journal.empty
    if left is None:
        left = undo(cloud, journal, err)
    if interrupted:
        message = 'interrupted'
    elif debug:
        six.reraise(*exc_info)
    else:
        message = six.text_type(err) or err.__class__.__name__
    if left:
        journal.keep()
        message = left_over_message(
            message + '; could not remove everything this run created',
            left, journal)
    elif created:
        message += '; what this run uploaded or registered was removed'
    if interrupted:
        raise Interrupted(signal_number(err), message)
    raise InstallError(message)


def left_over_message(message, left, journal):
    return ('{0}: left {1} (written down in {2}; the next install into this '
            'cloud removes them)'.format(message, '; '.join(left),
                                         journal.path))
