# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The one seam between euca2ools and the plugin's built-in implementation.

euca2ools runs only on Python 2.7 and is on no package registry.  When
``import euca2ools`` works, the plugin is a true member of its suite: it reads
euca2ools' configuration through euca2ools' own code and, for installs, uses
its bundle, upload and registration requests.  Everywhere else the plugin's
own suite reads the same configuration files and its own bundler does the
work.  Every other module asks this one; none imports euca2ools itself.
"""

from __future__ import absolute_import

import glob
import os.path

import requestbuilder.suite

import eustore_plugin

try:  # pragma: no cover - depends on the machine
    import euca2ools
    from euca2ools.commands import Euca2ools as _SuiteBase
except ImportError:
    euca2ools = None
    _SuiteBase = requestbuilder.suite.RequestBuilder


# Where euca2ools looks for configuration, in the order it reads them.
CONFIG_PATHS = ('/etc/euca2ools/euca2ools.ini',
                '/etc/euca2ools/conf.d/*.ini',
                '~/.euca/*.ini')


class EustoreSuite(_SuiteBase):
    """The command suite: euca2ools' own when present, its twin otherwise."""

    CONFIG_PATHS = CONFIG_PATHS

    @staticmethod
    def format_version():
        lines = ['eustore-plugin {0}'.format(eustore_plugin.__version__)]
        if euca2ools is not None:
            lines.append(_SuiteBase.format_version())
        else:
            lines.append('requestbuilder {0} (no euca2ools; built-in '
                         'bundler)'.format(requestbuilder.__version__))
        return '\n'.join(lines)

    def list_config_files(self):
        if euca2ools is not None:
            return _SuiteBase.list_config_files(self)
        if 'EUCA_CONFIG_PATH' in os.environ:
            patterns = os.environ['EUCA_CONFIG_PATH'].split(':')
        else:
            patterns = self.CONFIG_PATHS
        found = []
        for pattern in patterns:
            expanded = os.path.expanduser(os.path.expandvars(pattern))
            found.extend(sorted(glob.glob(expanded)))
        return found

    def get_user_agent(self):
        return 'eustore-plugin/{0} {1}'.format(
            eustore_plugin.__version__, _SuiteBase.get_user_agent(self))


def uses_euca2ools():
    return euca2ools is not None


def bundle_uploader(cloud, credentials, journal, workdir=None,
                    progress=None):
    """
    What bundles and uploads images for an install: the plugin's own
    bundler; euca2ools' BundleAndUploadImage when euca2ools is here.
    """
    from eustore_plugin.installer import BuiltinBundleUploader
    return BuiltinBundleUploader(cloud, credentials, journal,
                                 workdir=workdir, progress=progress)
