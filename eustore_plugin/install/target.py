# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Where an install puts the image: the install target.

An install strategy (the interface installer.install uses) has:

- ``needs_local_tarball``: whether members must be readable again from a
  tarball on disk (euca2ools reads each member in processes of its own);
- ``start(member, role, plan)``: begin one member's bundle, returning a
  pending bundle whose ``finish(kernel_id=None, ramdisk_id=None)`` uploads
  what is left and returns the manifest's location;
- ``register(params)``: RegisterImage, returning the image id;
- ``quiesce()``: wait until nothing it started can still reach the cloud
  (before an undo removes what it uploaded).
"""

from __future__ import absolute_import

import logging

from eustore_plugin import suite
from eustore_plugin.install.builtin import (DEFAULT_UPLOAD_CONCURRENCY,
                                            BuiltinStrategy)
from eustore_plugin.install.euca2oolstarget import Euca2oolsStrategy
from eustore_plugin.output import warn

LOG = logging.getLogger(__name__)


def install_strategy(command, cloud, credentials, journal, workdir,
                     upload_concurrency=None, progress=None,
                     writer_options=None):
    """
    How this install bundles, uploads and registers: euca2ools' own
    commands when euca2ools is here and they load, the plugin's own bundler
    and requests otherwise (with a one-line notice when euca2ools is there
    but unusable).
    """
    if suite.euca2ools is not None:
        commands = suite.euca2ools_commands()
        if not isinstance(commands, ImportError):
            LOG.debug('installing through euca2ools %s',
                      getattr(suite.euca2ools, '__version__', '?'))
            return Euca2oolsStrategy(command, cloud, credentials, journal,
                                     commands, workdir)
        warn('euca2ools is installed but its bundle commands do not load '
             '({0}); using the built-in bundler'.format(commands))
    LOG.debug('installing with the built-in bundler')
    return BuiltinStrategy(
        cloud, credentials, journal, workdir,
        upload_concurrency=upload_concurrency or DEFAULT_UPLOAD_CONCURRENCY,
        progress=progress, writer_options=writer_options)
