# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Where an install puts the image: its target.

A target *kind* is what an install knows of where the image goes before
anything moves: ``checks()`` it adds to the preflight list (preflight.py),
``collisions(cloud, plan)`` it finds in the way of the plan's names, the
``steps(plan, new_buckets)`` a dry run says it would take.  Opened for a
run (``open``), it gives the *target* the installer drives (installer.py):

- ``needs_local_file``: whether images must be files on disk (a source
  then downloads first; euca2ools reads each member in processes of its
  own);
- ``accepts(plan, layout)``: raise InstallError saying what to do when
  it cannot take an image of ``layout`` (images/layout.py), once the
  installer knows it;
- ``start(member, role, plan)``: begin storing one image (``member``: its
  name, size and a stream of its bytes, see installer.ImageMember);
  returns a pending image whose ``finish(kernel_id=None,
  ramdisk_id=None)`` stores what is left and returns a :class:`Stored`;
- ``register(params)``: RegisterImage with those parameters (the
  installer's and the Stored's), returning the image id;
- ``quiesce()``: wait until nothing it started can still reach the cloud
  (before an undo removes what it uploaded).

A target journals everything it creates in the cloud, before creating it.

Kinds, one module each, with the cloud's ``services`` they need:
instancestore.py's InstanceStore, S3-backed bundles (the images of the
seed's clouds), made by the plugin's own bundler (builtin.py) or, on
Python 2.7 beside euca2ools, by euca2ools' own requests
(euca2oolstarget.py); ebsbacked.py's EbsBacked (--ebs), a snapshot
written through the EBS direct APIs and registered as the image's root
device.
"""

from __future__ import absolute_import

import collections
import logging

from eustore_plugin.install.journal import CreatedBucket
from eustore_plugin.install.plan import BUNDLE_TAGS

LOG = logging.getLogger(__name__)


class RequestSettings(collections.namedtuple(
        'RequestSettings', 'config region loglevel')):
    """What a target that builds requests of its own builds them with: the
    command's configuration, --region and log level."""
    __slots__ = ()


class Stored(collections.namedtuple('Stored', 'location params tags')):
    """
    One image stored by a target, ready to register: ``location`` (what the
    journal names while it is registered: a manifest's bucket/key, a
    snapshot id), ``params`` (the target's own RegisterImage parameters)
    and ``tags`` (its own eustore:* tags).
    """
    __slots__ = ()


def bundle_stored(location):
    """The Stored of a bundle whose manifest is at ``location``."""
    return Stored(location, {'ImageLocation': location},
                  {BUNDLE_TAGS['manifest']: location})


class RunBuckets(object):
    """The buckets a bundle target writes to, created when first needed (a
    tarball that turns out to be damaged leaves nothing behind)."""

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
