# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Instance-store images, the install target of the seed's clouds: the image
bundled (encrypted, split, signed), its parts and manifest uploaded into a
bucket, registered by its manifest's location.  The bundling is the
plugin's own (builtin.py) or, on Python 2.7 beside euca2ools, euca2ools'
own requests (euca2oolstarget.py): :func:`instance_store_target` is the one
place that chooses.
"""

from __future__ import absolute_import

import logging

from eustore_plugin import suite
from eustore_plugin.cloud.client import BUNDLE_ACL
from eustore_plugin.install.builtin import (DEFAULT_UPLOAD_CONCURRENCY,
                                            BuiltinBundleTarget)
from eustore_plugin.install.euca2oolstarget import Euca2oolsBundleTarget
from eustore_plugin.install.preflight import (BucketCheck, BundleKeysCheck,
                                              BundlingCheck)
from eustore_plugin.output import warn

LOG = logging.getLogger(__name__)


class InstanceStore(object):
    """Instance-store images: bundles uploaded into a bucket."""

    kind = 'instance-store'
    services = ('ec2', 's3', 'iam')  # of the cloud's (IAM: the admin check)

    def __init__(self, options):
        self.options = options
        self.acl = options.acl or BUNDLE_ACL

    def checks(self):
        """What this kind adds to the preflight list (preflight.py), by
        the place in it they go."""
        return {'credentials': [BundleKeysCheck(), BundlingCheck()],
                'target': [BucketCheck()]}

    @staticmethod
    def collisions(cloud, plan):
        """What in the bucket is in the way of the plan: manifests where
        this install would write its own, as messages."""
        for role in plan.registered_roles:
            bucket, _, key = plan.manifest_location(role).partition('/')
            if cloud.head_object(bucket, key) is not None:
                yield ('the bucket already holds {0}, the manifest this '
                       'install would write; use --pad-name or -p to install '
                       'under other names, or another bucket'.format(
                           plan.manifest_location(role)))

    @staticmethod
    def steps(plan, new_buckets):
        """What a dry run says the install would do, after downloading."""
        for bucket in new_buckets:
            yield u'Would create bucket {0}'.format(bucket)
        for role in plan.registered_roles:
            what = 'image' if role == 'machine' else role
            extra = ''
            if role == 'machine':
                extra = ', {0}'.format(plan.virtualization_type or
                                       'paravirtual')
                if plan.kernel_id:
                    extra += ', with kernel {0} and ramdisk {1}'.format(
                        plan.kernel_id, plan.ramdisk_id)
            yield (u'Would bundle, upload and register {0} {1} from '
                   u'{2}{3}'.format(what, plan.names[role],
                                    plan.manifest_location(role), extra))

    def open(self, cloud, credentials, journal, workdir, progress=None,
             settings=None):
        """The target of one run: euca2ools' or the built-in bundler."""
        return instance_store_target(self.options, cloud, credentials,
                                     journal, workdir, progress, settings)


def instance_store_target(options, cloud, credentials, journal, workdir,
                          progress=None, settings=None):
    """
    How this install bundles, uploads and registers: euca2ools' own
    commands when euca2ools is here and they load, the plugin's own bundler
    and requests otherwise (with a one-line notice when euca2ools is there
    but unusable).  ``settings`` (target.RequestSettings) is what
    euca2ools' requests are built with.
    """
    acl = options.acl or BUNDLE_ACL
    if suite.euca2ools is not None:
        commands = suite.euca2ools_commands()
        if not isinstance(commands, ImportError):
            LOG.debug('installing through euca2ools %s',
                      getattr(suite.euca2ools, '__version__', '?'))
            return Euca2oolsBundleTarget(cloud, credentials, journal,
                                         commands, workdir, settings, acl)
        warn('euca2ools is installed but its bundle commands do not load '
             '({0}); using the built-in bundler'.format(commands))
    LOG.debug('installing with the built-in bundler')
    return BuiltinBundleTarget(
        cloud, credentials, journal, workdir, acl=acl,
        upload_concurrency=options.upload_concurrency or
        DEFAULT_UPLOAD_CONCURRENCY, progress=progress,
        writer_options={'compression': options.compression_level})
