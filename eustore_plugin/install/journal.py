# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What an install created in the cloud, to undo it by identity.

Names are not identities: an image named like this run's may be an earlier
install's, still in use, or a concurrent run's.  So the journal holds only
what this run itself created, as it learnt it: the exact object keys it was
about to PUT (written down first: an upload cut half-way may still land),
the bucket it created, the snapshot StartSnapshot made (the token it was
started with first, then its id, before any block is written), and the
image ids RegisterImage returned.  Undoing removes those and nothing else,
newest first (so an image goes before the snapshot it boots from).

The journal is a file in the user's state directory
(``$XDG_STATE_HOME/eustore/installs/``, else ``~/.local/state/...``),
appended and flushed before each step and locked while its run lives, so
that a run killed with -9 is undone by the next install into the same cloud
(:func:`undo_abandoned`), which says so.  A registration in flight when the
run died is without an id: it is looked up by its name and manifest
location, and left alone (and reported) when the cloud cannot say where an
image's manifest is; a snapshot being started then is looked up by its
client token's tag.
"""

from __future__ import absolute_import

import errno
import fcntl
import io
import json
import logging
import os
import os.path
import threading
import time
import uuid

import six

from eustore_plugin.errors import status_of
from eustore_plugin.install.installed import reported_root

LOG = logging.getLogger(__name__)


# ----------------------------------------------------------------- actions

class Action(object):
    """Something the run created (or began to), and how to undo it."""

    KIND = None
    FIELDS = ()

    def __init__(self, **fields):
        for name in self.FIELDS:
            setattr(self, name, fields.get(name))

    def record(self):
        data = dict((name, getattr(self, name)) for name in self.FIELDS)
        data['action'] = self.KIND
        return data

    def undo(self, cloud):
        """Undo it; returns a description of what is left, or None."""
        raise NotImplementedError

    def __str__(self):
        return '{0} {1}'.format(self.KIND, ' '.join(
            six.text_type(getattr(self, name)) for name in self.FIELDS))


class CreatedBucket(Action):
    KIND = 'created-bucket'
    FIELDS = ('bucket',)

    def undo(self, cloud):
        cloud.delete_bucket(self.bucket)

    def describe(self):
        return 'bucket {0}'.format(self.bucket)


class PutObject(Action):
    KIND = 'put-object'
    FIELDS = ('bucket', 'key')

    def undo(self, cloud):
        cloud.delete_object(self.bucket, self.key)

    def describe(self):
        return 'object {0}/{1}'.format(self.bucket, self.key)


class Registering(Action):
    """RegisterImage sent; until ``Registered`` follows, its outcome is
    not known.  ``location`` is where the image is: a bundle's manifest,
    or an EBS-backed image's root snapshot."""

    KIND = 'registering'
    FIELDS = ('name', 'location')

    def undo(self, cloud):
        images = cloud.images_named(self.name)
        matching = [image for image in images
                    if self.location in (image.get('imageLocation'),
                                         reported_root(image)[1])]
        unknown = [image for image in images
                   if not image.get('imageLocation') and
                   image not in matching]
        for image in matching:
            cloud.deregister_image(image['imageId'])
        if unknown:
            # A manifest is BUCKET/KEY, a snapshot an id.
            what = 'where its manifest is' if '/' in self.location else \
                'which snapshot it boots from'
            return ('image {0} named {1}: the cloud does not say {2}, so '
                    'whether this run registered it is not known; '
                    'deregister it if it is'.format(
                        ', '.join(image.get('imageId') or '?'
                                  for image in unknown), self.name, what))
        return None

    def describe(self):
        return 'a registration of {0}'.format(self.name)


# What EC2 answers (400, not 404) for an image that is gone already.
GONE_IMAGE_CODES = ('InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable')


class Registered(Action):
    KIND = 'registered'
    FIELDS = ('image_id', 'name')

    def undo(self, cloud):
        try:
            cloud.deregister_image(self.image_id)
        except Exception as err:
            if getattr(err, 'code', None) not in GONE_IMAGE_CODES:
                raise
            LOG.debug('%s was deregistered already (%s)', self.image_id,
                      err.code)

    def describe(self):
        return 'image {0} ({1})'.format(self.image_id, self.name)


# The tag a snapshot is started with, holding StartSnapshot's client token:
# what finds it when the run died before StartSnapshot answered.
CLIENT_TOKEN_TAG = 'eustore:client-token'
# What EC2 answers (400) for a snapshot that is gone already.
GONE_SNAPSHOT_CODES = ('InvalidSnapshot.NotFound',)


def _delete_snapshot(cloud, snapshot_id):
    try:
        cloud.delete_snapshot(snapshot_id)
    except Exception as err:
        if getattr(err, 'code', None) not in GONE_SNAPSHOT_CODES:
            raise
        LOG.debug('%s was deleted already (%s)', snapshot_id, err.code)


class StartingSnapshot(Action):
    """StartSnapshot sent with ``client_token``; until ``CreatedSnapshot``
    follows, whether it made a snapshot is not known: undone by the
    token, which the snapshot is tagged with."""

    KIND = 'starting-snapshot'
    FIELDS = ('client_token',)

    def undo(self, cloud):
        tag = {'tag:' + CLIENT_TOKEN_TAG: [self.client_token]}
        for snapshot in cloud.describe_snapshots(owner='self', filters=tag):
            # Checked here too: a cloud may ignore filters.
            tags = dict((item.get('key'), item.get('value'))
                        for item in snapshot.get('tagSet') or []
                        if isinstance(item, dict))
            if tags.get(CLIENT_TOKEN_TAG) == self.client_token:
                _delete_snapshot(cloud, snapshot['snapshotId'])

    def describe(self):
        return 'a snapshot being started (token {0})'.format(
            self.client_token)


class CreatedSnapshot(Action):
    KIND = 'created-snapshot'
    FIELDS = ('snapshot_id',)

    def undo(self, cloud):
        _delete_snapshot(cloud, self.snapshot_id)

    def describe(self):
        return 'snapshot {0}'.format(self.snapshot_id)


ACTIONS = dict((cls.KIND, cls) for cls in (
    CreatedBucket, PutObject, Registering, Registered, StartingSnapshot,
    CreatedSnapshot))


def _action_from(record):
    cls = ACTIONS.get(record.get('action'))
    if cls is None:
        return None
    return cls(**dict((name, record.get(name)) for name in cls.FIELDS))


# ----------------------------------------------------------------- journal

def state_dir():
    base = os.environ.get('XDG_STATE_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'state')
    return os.path.join(base, 'eustore', 'installs')


def _makedirs_private(path):
    try:
        os.makedirs(path, 0o700)
    except OSError as err:
        if err.errno != errno.EEXIST:
            raise


class Journal(object):
    """
    This run's journal.  ``cloud_id`` says which cloud the run installs
    into (endpoints and account, no secrets), so that only an install into
    the same cloud undoes an abandoned one.
    """

    def __init__(self, cloud_id, directory=None):
        self.cloud_id = cloud_id
        self.directory = directory or state_dir()
        self.actions = []
        # Registrations whose outcome is now known (by position).
        self._settled = set()
        self.path = None
        self._file = None
        self._lock = threading.RLock()

    # Writing ------------------------------------------------------------

    def _open(self):
        _makedirs_private(self.directory)
        self.path = os.path.join(self.directory, '{0}-{1}.journal'.format(
            time.strftime('%Y%m%dT%H%M%S', time.gmtime()),
            uuid.uuid4().hex[:8]))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                     os.O_APPEND | getattr(os, 'O_NOFOLLOW', 0), 0o600)
        self._file = io.open(fd, 'ab')
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._write({'cloud': self.cloud_id, 'pid': os.getpid(),
                     'started': time.time()})

    def _write(self, data):
        with self._lock:  # euca2ools sends from threads of its own
            self._file.write(json.dumps(data, sort_keys=True)
                             .encode('utf-8') + b'\n')
            self._file.flush()
            os.fsync(self._file.fileno())

    def add(self, action):
        """Write ``action`` down (before doing it); returns it."""
        with self._lock:
            if self._file is None:
                self._open()
            LOG.debug('journal: %s', action)
            self._write(action.record())
            self.actions.append(action)
        return action

    def settled(self, intent, outcome=None):
        """``intent`` (a Registering) is over; ``outcome`` is what it made
        (a Registered), or None when it made nothing."""
        self._settled.add(id(intent))
        self._write({'settled': self.actions.index(intent)})
        if outcome is not None:
            self.add(outcome)

    @property
    def empty(self):
        return not self.actions

    # Undoing ------------------------------------------------------------

    def pending(self):
        """What undo would remove, newest first, each thing once."""
        return once([action for action in reversed(self.actions)
                     if id(action) not in self._settled])

    def undo(self, cloud):
        """
        Remove everything recorded, newest first; returns descriptions of
        what could not be removed.
        """
        done, left = undo_actions(self.pending(), cloud)
        done = set(str(action) for action in done)
        self._settled.update(id(action) for action in self.actions
                             if str(action) in done)
        if not left:
            self.discard()
        return left

    def finish(self):
        """The run succeeded: nothing is to be undone."""
        self.discard()

    def discard(self):
        if self._file is not None:
            self._file.close()
            self._file = None
            try:
                os.remove(self.path)
            except OSError:
                pass

    def keep(self):
        """Leave the journal for the next run (what undo could not do)."""
        if self._file is not None:
            self._file.close()
            self._file = None


class AbandonedJournal(object):
    """A journal whose run is gone, read back."""

    def __init__(self, path, header, actions, settled):
        self.path = path
        self.cloud_id = header.get('cloud')
        self.started = header.get('started')
        self.pid = header.get('pid')
        self.actions = actions
        self.settled = settled

    def pending(self):
        return once([action for index, action in reversed(list(enumerate(
            self.actions))) if index not in self.settled and action])


def once(actions):
    """``actions`` without repeats of one (the same object PUT twice: a
    bundle euca2ools uploaded again), the first of each kept."""
    seen = set()
    kept = []
    for action in actions:
        if str(action) not in seen:
            seen.add(str(action))
            kept.append(action)
    return kept


def undo_actions(actions, cloud):
    """
    Undo ``actions`` in the order given, going on after a failure; returns
    (the actions done, descriptions of what is left).  What is recorded is
    what a run was about to create, so something already gone (a 404) is
    done.
    """
    done, left = [], []
    for action in actions:
        LOG.debug('undoing: %s', action.describe())
        try:
            remains = action.undo(cloud)
        except Exception as err:  # keep undoing the rest
            if status_of(err) != 404:
                LOG.debug('could not undo %s (%s)', action.describe(), err)
                left.append('{0} ({1})'.format(action.describe(), err))
                continue
            LOG.debug('%s was not there (404): done', action.describe())
            remains = None
        done.append(action)
        if remains:
            LOG.debug('left: %s', remains)
            left.append(remains)
    return done, left


def _read_abandoned(path):
    """The journal at ``path`` if no live run holds it, else None."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, 'O_NOFOLLOW', 0))
    except OSError:
        return None
    with io.open(fd, 'r+b') as source:
        try:
            fcntl.flock(source.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError):
            LOG.debug('leaving %s alone: its run is alive', path)
            return None
        lines = source.read().decode('utf-8', 'replace').splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # cut by the kill: the action it began is not there
    if not records or not isinstance(records[0], dict) or \
            'cloud' not in records[0]:
        return None
    actions, settled = [], set()
    for record in records[1:]:
        if not isinstance(record, dict):
            continue
        if 'settled' in record:
            settled.add(record['settled'])
            continue
        action = _action_from(record)
        if action is None:
            LOG.debug('leaving an action of a kind not known here alone '
                      '(%s in %s)', record.get('action'), path)
        actions.append(action)
    return AbandonedJournal(path, records[0], actions, settled)


def same_cloud(journalled, cloud_id):
    """
    Whether a journal's cloud is ``cloud_id`` (Cloud.identity): the same
    EC2, and the same S3 and account unless one of the runs did not know
    them (an EBS-backed install opens no S3 and loads no bundling keys,
    and what it leaves is EC2's alone).
    """
    if not isinstance(journalled, dict) or \
            journalled.get('ec2') != cloud_id.get('ec2'):
        return False
    return all(journalled.get(key) == cloud_id.get(key) or
               None in (journalled.get(key), cloud_id.get(key))
               for key in ('s3', 'account'))


def undo_abandoned(cloud, cloud_id, report, directory=None):
    """
    Undo what runs killed before they could clean up left in this cloud
    (journals of other clouds are left for an install into those);
    ``report(text)`` is told what was done.  Returns nothing.
    """
    directory = directory or state_dir()
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        if not name.endswith('.journal'):
            continue
        path = os.path.join(directory, name)
        journal = _read_abandoned(path)
        if journal is None:
            continue
        if not same_cloud(journal.cloud_id, cloud_id):
            LOG.debug('leaving %s alone: an install into another cloud',
                      path)
            continue
        LOG.debug('undoing %s, left by an interrupted install', path)
        done, left = undo_actions(journal.pending(), cloud)
        removed = [action.describe() for action in done]
        when = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(
            journal.started)) if journal.started else 'earlier'
        if removed:
            report(u'an install interrupted at {0} (pid {1}) had left {2}; '
                   u'removed'.format(when, journal.pid, ', '.join(removed)))
        if left:
            report(u'an install interrupted at {0} left what could not be '
                   u'removed: {1} (kept in {2})'.format(when, '; '.join(left),
                                                        path))
        else:
            os.remove(path)
