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
import subprocess

import requestbuilder.suite

import eustore_plugin
from eustore_plugin.output import warn

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


def _euca2ools_commands():
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
        not isinstance(_euca2ools_commands(), ImportError)


def bundle_uploader(command, cloud, credentials, journal, workdir=None,
                    progress=None):
    """
    What bundles, uploads and registers images for an install: euca2ools'
    own BundleAndUploadImage and RegisterImage when euca2ools is here and
    they load, the plugin's own bundler and requests otherwise.
    """
    from eustore_plugin.installer import BuiltinBundleUploader
    if euca2ools is not None:
        commands = _euca2ools_commands()
        if not isinstance(commands, ImportError):
            return Euca2oolsBundleUploader(command, cloud, credentials,
                                           journal, commands,
                                           workdir=workdir)
        warn('euca2ools is installed but its bundle commands do not load '
             '({0}); using the built-in bundler'.format(commands))
    return BuiltinBundleUploader(cloud, credentials, journal,
                                 workdir=workdir, progress=progress)


class Euca2oolsBundleUploader(object):
    """
    Bundles, uploads and registers through euca2ools' own requests, so that
    users get exactly euca2ools' behaviour (and its fixes, and its
    configuration handling).  euca2ools writes each manifest as soon as its
    parts are up, so kernel and ramdisk ids must be known before the machine
    image is bundled.
    """

    defers_manifests = False

    def __init__(self, command, cloud, credentials, journal, commands,
                 workdir=None):
        self.command = command
        self.cloud = cloud
        self.credentials = credentials
        self.journal = journal
        self.bundle_command, self.register_command = commands
        self.workdir = workdir

    def _common_args(self, service):
        """
        What every euca2ools request is given: the keys and endpoint the
        plugin found (from options, any eucarc variable or the config
        files), so that euca2ools, which reads fewer of those places, uses
        the same ones.
        """
        common = dict((name, value) for name, value in (
            ('key_id', self.cloud.auth.args.get('key_id')),
            ('secret_key', self.cloud.auth.args.get('secret_key')),
            ('security_token', self.cloud.auth.args.get('security_token')),
            ('region', self.command.args.get('region'))) if value)
        # "REGION::URL" keeps the region the plugin signs for: a URL alone
        # would leave euca2ools with none.
        common['url'] = '{0}::{1}'.format(service.region_name,
                                          service.endpoint) \
            if service.region_name else service.endpoint
        return common

    def upload(self, fileobj, size, prefix, image_type, architecture,
               bucket, kernel_id=None, ramdisk_id=None, member=None):
        creds = self.credentials
        # euca2ools reads the image in processes it forks, which would
        # inherit (and so hold open) the write end of any pipe we fed
        # ourselves.  tar feeds it instead: the write end lives in tar only,
        # so euca2ools sees the end of the member when tar exits.
        tarball, member_name = member
        feeder = subprocess.Popen(['tar', '-xzOf', tarball, member_name],
                                  stdout=subprocess.PIPE)
        args = dict(self._common_args(self.cloud.s3), image=feeder.stdout,
                    image_size=size, prefix=prefix, arch=architecture,
                    image_type=image_type, bucket=bucket,
                    destination=self.workdir, cert=creds.certificate,
                    privatekey=creds.private_key,
                    ec2cert=creds.cloud_certificate,
                    user=creds.account_id, show_progress=False,
                    # Defaults argparse would fill in on euca2ools' command
                    # line; requestbuilder does not when called like this.
                    max_pending_parts=2, part_size=10485760,
                    acl='aws-exec-read')
        if kernel_id:
            args.update(kernel=kernel_id, ramdisk=ramdisk_id)
        # Whatever euca2ools manages to upload before a failure is found by
        # its name and removed with the rest.
        self.journal.uploaded_prefix(bucket, prefix + '.')
        try:
            result = self.bundle_command(
                config=self.command.config, loglevel=self.command.log.level,
                **args).main()
        finally:
            feeder.stdout.close()
            feeder.wait()
        return _UploadedManifest(result['manifests'][0]['key'])

    def register(self, **params):
        args = dict(self._common_args(self.cloud.ec2), **params)
        return self.register_command(config=self.command.config,
                                     loglevel=self.command.log.level,
                                     **args).main()['imageId']


class _UploadedManifest(object):
    def __init__(self, location):
        self.location = location

    def finish(self, kernel_id=None, ramdisk_id=None):
        return self.location
