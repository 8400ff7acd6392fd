# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
EBS-backed images, the install target EC2 users launch from (--ebs): the
whole disk written into a new snapshot through the EBS direct APIs
(snapshot.py), then registered as an HVM image whose root device is a
volume made from that snapshot.  No bucket and no bundling keys: the
snapshot is the image.

The image's attributes are the user's where given, else what the store
says, else what AWS recommends for an image of unknown make:

- boot mode: the store's (an entry's ``boot_mode``, simplestreams'
  ``uefi1.img``), else ``uefi`` for 64-bit ARM (the only firmware there),
  else ``legacy-bios`` (x86 instance types boot that by default, and an
  image made for BIOS alone would not boot under ``uefi-preferred``);
- ENA: on (current instance types need it; Linux has had the driver
  since 4.9);
- IMDS: ``v2.0``, instances launched from it need session tokens, as AWS
  recommends;
- the root device: /dev/xvda, a gp3 volume the size of the snapshot,
  deleted with the instance.
"""

from __future__ import absolute_import

import collections
import logging

from eustore_plugin.cloud.ebs import BLOCK_SIZE
from eustore_plugin.images.layout import HVM
from eustore_plugin.install.plan import (BUNDLE_TAGS, DEFAULT_VOLUME_TYPE,
                                         InstallError, describe,
                                         paravirtual_refused)
from eustore_plugin.install.preflight import Check
from eustore_plugin.install.snapshot import DEFAULT_CONCURRENCY, SnapshotWriter
from eustore_plugin.install.target import Stored

LOG = logging.getLogger(__name__)

DEFAULT_ROOT_DEVICE = '/dev/xvda'
DEFAULT_IMDS_SUPPORT = 'v2.0'
# --imds-support's other choice: instances may use IMDSv1 (as EC2 lets
# them when an image says nothing).
IMDS_OPTIONAL = 'optional'
_ARM64 = ('arm64', 'aarch64')


class EbsBacked(object):
    """EBS-backed images: a snapshot, registered as an HVM image's root
    device.  ``open_ebs(cloud)`` gives the cloud's EBS direct APIs
    (cloud/ebs.py's EbsDirect), raising NoEbsDirectError when it has
    none."""

    kind = 'ebs'
    services = ('ec2',)  # of the cloud's (a bucket is not needed)

    def __init__(self, options, open_ebs):
        self.options = options
        self.open_ebs = open_ebs
        self.ebs = None  # the EbsDirect, once EbsCheck found it

    def checks(self):
        """What this kind adds to the preflight list (preflight.py), by
        the place in it they go."""
        return {'credentials': [EbsCheck()]}

    @staticmethod
    def collisions(cloud, plan):
        """Nothing but the image's name (the reuse check's) can be in the
        way: a snapshot has none."""
        return []

    def steps(self, plan, new_buckets):
        """What a dry run says the install would do, after downloading."""
        options = self.options
        yield (u'Would write the disk into a new snapshot of {0} through '
               u'the EBS direct APIs{1}, {2} KiB blocks, empty ones '
               u'skipped'.format('{0} GiB'.format(options.volume_size)
                                 if options.volume_size else
                                 'its size in whole GiB',
                                 ' at ' + self.ebs.endpoint
                                 if self.ebs is not None else '',
                                 BLOCK_SIZE // 1024))
        yield (u'Would register EBS-backed image {0} from it ({1})'.format(
            plan.names['machine'], ', '.join(
                ImageSettings.of(plan, options).described())))

    def open(self, cloud, credentials, journal, workdir, progress=None,
             settings=None):
        """The target of one run."""
        ebs = self.ebs or self.open_ebs(cloud)
        return EbsTarget(cloud, SnapshotWriter(
            ebs, cloud, journal, concurrency=self.options.upload_concurrency
            or DEFAULT_CONCURRENCY, progress=progress), self.options)


class ImageSettings(collections.namedtuple(
        'ImageSettings', 'boot_mode boot_mode_by ena imds_support '
        'root_device volume_type')):
    """An EBS-backed image's attributes, each the user's, the store's or
    the default (see the module's docstring); ``boot_mode_by`` says whose
    the boot mode is, for messages."""
    __slots__ = ()

    @classmethod
    def of(cls, plan, options):
        if options.boot_mode:
            mode, by = options.boot_mode, 'given'
        elif plan.boot_mode:
            mode, by = plan.boot_mode, 'the store\'s'
        elif plan.architecture in _ARM64:
            mode, by = 'uefi', 'for {0}'.format(plan.architecture)
        else:
            mode, by = 'legacy-bios', 'the default'
        return cls(mode, by, options.ena is not False,
                   options.imds_support or DEFAULT_IMDS_SUPPORT,
                   options.root_device_name or DEFAULT_ROOT_DEVICE,
                   options.volume_type or DEFAULT_VOLUME_TYPE)

    @property
    def imds_required(self):
        return self.imds_support != IMDS_OPTIONAL

    def described(self):
        """The attributes, as messages say them."""
        return ['hvm', 'boot mode {0} ({1})'.format(self.boot_mode,
                                                    self.boot_mode_by),
                'ENA' if self.ena else 'no ENA',
                'IMDSv2 required' if self.imds_required else
                'IMDSv1 allowed',
                'root {0} on {1}'.format(self.root_device, self.volume_type)]


def register_params(plan, options, snapshot):
    """RegisterImage's parameters of an EBS-backed image of ``snapshot``
    (snapshot.Snapshot), beside the installer's own (name, architecture,
    description, virtualization type)."""
    settings = ImageSettings.of(plan, options)
    mapping = 'BlockDeviceMapping.1.'
    params = {'RootDeviceName': settings.root_device,
              mapping + 'DeviceName': settings.root_device,
              mapping + 'Ebs.SnapshotId': snapshot.id,
              mapping + 'Ebs.VolumeSize': str(snapshot.volume_size),
              mapping + 'Ebs.VolumeType': settings.volume_type,
              mapping + 'Ebs.DeleteOnTermination': 'true',
              'BootMode': settings.boot_mode}
    if settings.ena:
        params['EnaSupport'] = 'true'
    if settings.imds_required:
        params['ImdsSupport'] = settings.imds_support
    return params


class EbsTarget(object):
    """Writes the machine image into a snapshot (``writer``: a
    SnapshotWriter) as it streams by, and registers it."""

    needs_local_file = False

    def __init__(self, cloud, writer, options):
        self.cloud = cloud
        self.writer = writer
        self.options = options

    def accepts(self, plan, layout):
        if layout.kind != HVM:
            self.refuse(plan)

    @staticmethod
    def refuse(plan):
        raise InstallError(paravirtual_refused(
            plan.source.get('image') or plan.source.get('tarball')))

    def start(self, member, role, plan):
        """The whole disk written now (a kernel or ramdisk is refused: the
        image is paravirtual); returns what finishes it."""
        if role != 'machine':
            self.refuse(plan)
        snapshot = self.writer.write(
            member.stream, member.size, volume_gib=self.options.volume_size,
            description=describe(plan, 'machine'), tags=plan.tags,
            label='writing snapshot')
        return _WrittenSnapshot(plan, self.options, snapshot)

    def register(self, params):
        return self.cloud.register_image(**params)

    def quiesce(self):
        """Nothing to wait for: the writer's uploads have ended when
        start() has."""


class _WrittenSnapshot(object):
    def __init__(self, plan, options, snapshot):
        self.stored = Stored(snapshot.id,
                             register_params(plan, options, snapshot),
                             {BUNDLE_TAGS['snapshot']: snapshot.id})

    def finish(self, kernel_id=None, ramdisk_id=None):
        return self.stored


class EbsCheck(Check):
    """
    The cloud has the EBS direct APIs: their endpoint found (--ebs-url,
    EBS_URL, the region's ebs-url, or AWS's for AWS's EC2), and, in a dry
    run, a harmless call proving the keys may complete snapshots there.
    """

    name = 'ebs'
    needs = ('ec2',)

    def run(self, context):
        kind = context.kind
        kind.ebs = kind.open_ebs(context.cloud)
        if not context.dry_run:
            return None
        kind.ebs.check_access()
        return 'the EBS direct APIs at {0} take your keys'.format(
            kind.ebs.endpoint)
