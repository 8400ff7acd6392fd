# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The command suite, and the one place that asks whether euca2ools is here.

euca2ools runs only on Python 2.7 and is on no package registry.  When
``import euca2ools`` works, the plugin is a true member of its suite: it
reads euca2ools' configuration through euca2ools' own code, and installs
through euca2ools' bundle and register commands when those load
(:func:`euca2ools_commands`; install/target.py makes the choice).
Everywhere else :class:`EustoreSuite` reads the same configuration files
itself.  No other module imports euca2ools.
"""

from __future__ import absolute_import

import glob
import os

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


_EUCA2OOLS_COMMANDS = []


def euca2ools_commands():
    """
    euca2ools' BundleAndUploadImage and RegisterImage classes, or the
    ImportError that stops them loading (its lxml or PyYAML missing, say):
    ``import euca2ools`` alone says nothing of those.
    """
    if not _EUCA2OOLS_COMMANDS:
        try:
            from euca2ools.commands.bundle.bundleanduploadimage import \
                BundleAndUploadImage
            from euca2ools.commands.ec2.registerimage import RegisterImage
            _EUCA2OOLS_COMMANDS.append((BundleAndUploadImage, RegisterImage))
        except ImportError as err:
            _EUCA2OOLS_COMMANDS.append(err)
    return _EUCA2OOLS_COMMANDS[0]


def uses_euca2ools():
    """Whether installs go through euca2ools' own commands."""
    return euca2ools is not None and \
        not isinstance(euca2ools_commands(), ImportError)
