# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What every eustore command shares, declared once: the suite, the store
service and its options, how a command ends (one clean line on errors and
interruptions, no traceback unless --debug, a quiet end when the reader of
its output goes away), the base of the commands that read a store's
catalog, the base of those that change a store, and the base of those
that look at or change what is installed in the user's cloud.
"""

from __future__ import absolute_import

import json
import logging
import os
import signal
import sys

from requestbuilder import Arg
from requestbuilder.exceptions import ArgumentError, ServerError
from requestbuilder.request import BaseRequest
import six

from eustore_plugin.cloud.auth import CloudCredentialArgs
from eustore_plugin.cloud.client import Cloud, check_bucket_name
from eustore_plugin.dryrun import DryRun
from eustore_plugin.output import emit_raw, error_line, is_broken_pipe
from eustore_plugin.publish.bucket import StoreBucket
from eustore_plugin.publish.purge import purge_caches
from eustore_plugin.publish.transaction import (CatalogSigner, change_catalog,
                                                remove_tarballs)
from eustore_plugin.signals import raise_on_signals, signal_number
from eustore_plugin.store.download import (DEFAULT_MIN_RATE,
                                           DEFAULT_STALL_TIMEOUT, Pace)
from eustore_plugin.store.reader import CatalogReader
from eustore_plugin.store.service import (AnonymousStoreAuth, EustoreService,
                                          store_option)
from eustore_plugin.suite import EustoreSuite

# Options of the commands that speak to the cloud, declared once.
EC2_URL_ARG = Arg('--ec2-url', metavar='URL', route_to=None,
                  help='compute service URL (default: $EC2_URL)')
S3_URL_ARG = Arg('--s3-url', metavar='URL', route_to=None,
                 help='object storage service URL (default: $S3_URL)')
IAM_URL_ARG = Arg('--iam-url', metavar='URL', route_to=None,
                  help='IAM service URL (default: $EUARE_URL)')


def _debug_requested():
    return any(arg in sys.argv for arg in ('--debug', '--debugger'))


class EustoreRequest(BaseRequest):
    """Base of the eustore commands: the suite, the store, the options."""

    SUITE = EustoreSuite
    SERVICE_CLASS = EustoreService
    AUTH_CLASS = AnonymousStoreAuth

    @classmethod
    def run(cls):
        """
        requestbuilder's run, ending as a command should: an interruption
        (Ctrl-C, SIGTERM, SIGHUP) prints one line and exits 128 + the
        signal after what the command had to clean up; a closed pipe
        (``... | head``) ends quietly; -D is --debug, as in euca2ools 2.
        """
        sys.argv[1:] = ['--debug' if arg == '-D' else arg
                        for arg in sys.argv[1:]]
        raise_on_signals()
        try:
            BaseRequest.run.__func__(cls)
        except KeyboardInterrupt as err:
            if _debug_requested():
                raise
            message = getattr(err, 'message', None) or 'interrupted'
            _quietly(error_line, message)
            sys.exit(128 + signal_number(err))
        except (IOError, OSError) as err:
            if not is_broken_pipe(err):
                raise
            _end_quietly_on_broken_pipe()
        _flush_or_end_quietly()

    def _build_parser(self):
        BaseRequest._build_parser(self)
        # euca2ools 2.x, whose options users know (see the seed's help),
        # also spelt --debug as -D; requestbuilder only has --debug (run()
        # reads -D as --debug before requestbuilder looks).
        parser = self._cli_parser
        debug = parser._option_string_actions['--debug']
        debug.option_strings.insert(0, '-D')
        parser._option_string_actions['-D'] = debug
        if self._BaseCommand__do_cli and '_ARGCOMPLETE' in os.environ:
            complete(parser)

    def configure(self):
        BaseRequest.configure(self)
        # The plugin's own loggers follow --debug as requestbuilder's do.
        logging.getLogger('eustore_plugin').setLevel(self.log.level)
        self.check_region()

    def check_region(self):
        """
        A --region that names no region of the configuration is a mistake
        (requestbuilder would quietly use the defaults, and so the
        historical store), not a request for defaults.
        """
        requested = self.args.get('region')
        region = requested.rpartition('@')[2] if requested else None
        if region and self.config.get_region_option(
                'name', region=region) is None:
            files = self.suite.list_config_files()
            raise ArgumentError(
                '--region {0}: no region "{1}" in the configuration ({2}); '
                'check its name, or add a [region {1}] section'.format(
                    requested, region, ', '.join(files) if files else
                    'no configuration files were found'))

    def number_option(self, dest, config_key, unit, default=None):
        """
        A positive number from the option whose dest is ``dest``, else
        from the configuration's ``config_key`` (the region's, then
        [global]), else ``default``; ArgumentError naming where a bad one
        came from.
        """
        value = self.args.get(dest)
        if value is None:
            option = store_option(self.config, config_key)
            if not option:
                return default
            try:
                value = float(option)
            except ValueError:
                raise ArgumentError('"{0}" must be a number of {1}, not {2!r}'
                                    .format(config_key, unit, option))
            where = '"{0}"'.format(config_key)
        else:
            where = '--' + dest.replace('_', '-')
        if value <= 0:
            raise ArgumentError('{0} must be more than 0 {1}'.format(
                where, unit))
        return value

    def handle_cli_exception(self, err):
        """One line, made safe for a terminal: messages quote stores."""
        if isinstance(err, (IOError, OSError)) and is_broken_pipe(err):
            _end_quietly_on_broken_pipe()
        if isinstance(err, (ArgumentError, ServerError)) or self.debug:
            return BaseRequest.handle_cli_exception(self, err)
        message = err.args[0] if err.args and err.args[0] else \
            (six.text_type(err) or type(err).__name__)
        error_line(message)
        sys.exit(1)

    def open_cloud(self, ec2_only=False, s3_optional=False):
        """The user's cloud, from the URL options the command has;
        ``ec2_only`` when only its images are looked at, ``s3_optional``
        when only some of them need S3 (Cloud.from_command)."""
        return Cloud.from_command(self, ec2_url=self.args.get('ec2_url'),
                                  s3_url=self.args.get('s3_url'),
                                  iam_url=self.args.get('iam_url'),
                                  ec2_only=ec2_only, s3_optional=s3_optional)

    def printed_as_report(self, result, as_json=lambda result: result):
        """Print a dry run's report, or ``as_json(result)`` as --json's
        object; whether it was (else the command prints its sentence)."""
        if isinstance(result, DryRun):
            result.report(as_json=self.args.get('json'))
            return True
        if self.args.get('json'):
            emit_raw(json.dumps(as_json(result), indent=2, sort_keys=True,
                                ensure_ascii=True))
            return True
        return False


def complete(parser):
    """
    Shell completion: when the shell's completion hook runs the command
    (argcomplete's protocol: _ARGCOMPLETE set, the line in COMP_LINE), the
    options are written for the shell and the process ends here.  Without
    the argcomplete package there is nothing to complete with.
    """
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def _quietly(function, *args):
    try:
        function(*args)
    except (IOError, OSError):
        pass


def _flush_or_end_quietly():
    try:
        sys.stdout.flush()
    except (IOError, OSError) as err:
        if not is_broken_pipe(err):
            raise
        _end_quietly_on_broken_pipe()


def _end_quietly_on_broken_pipe():
    """The reader has gone: say nothing more, as `cat` would not."""
    try:
        sys.stdout = open('/dev/null', 'w')
    except (IOError, OSError):
        pass
    sys.exit(128 + getattr(signal, 'SIGPIPE', 13))


class CatalogRequest(EustoreRequest):
    """
    A command that reads the store's catalog (store.CatalogReader says
    how): the trusted keys and the pace a store must keep (``pace``, a
    download.Pace) are its options.
    """

    ARGS = [Arg('--trusted-key', dest='trusted_keys', metavar='FILE',
                action='append', route_to=None, help='''OpenPGP public key
                the store's catalog must be signed with; may be given more
                than once (default: the "eustore-trusted-keys" config
                option)'''),
            Arg('--stall-timeout', metavar='SECONDS', type=float,
                route_to=None, help='''give up on a transfer from the store
                (and resume it, or fail) when no data arrives for this long;
                also the time over which --min-rate is measured (default:
                the "eustore-stall-timeout" option, or {0:.0f})'''
                .format(DEFAULT_STALL_TIMEOUT)),
            Arg('--min-rate', metavar='BYTES_PER_SECOND', type=float,
                route_to=None, help='''fail a transfer from the store that
                brings fewer bytes a second than this over --stall-timeout
                seconds of waiting for it (default: the "eustore-min-rate"
                option, or {0:.0f})'''.format(DEFAULT_MIN_RATE))]

    def configure(self):
        EustoreRequest.configure(self)
        self.pace = Pace(
            self.number_option('stall_timeout', 'eustore-stall-timeout',
                               'seconds', default=DEFAULT_STALL_TIMEOUT),
            self.number_option('min_rate', 'eustore-min-rate',
                               'bytes a second', default=DEFAULT_MIN_RATE))

    def fetch_catalog(self):
        """Read, verify and parse the store's catalog; raises StoreError."""
        return CatalogReader(
            self.service, self.config, self.args.get('trusted_keys'),
            user_agent=self.suite.get_user_agent(), pace=self.pace).read()

    def check_location(self, image, location):
        """Raise UrlRefused unless the policy lets ``location`` (a file of
        ``image``: its tarball, its disk) be read."""
        self.service.policy.check(location, u'image "{0}"'.format(image.name))


class PublisherRequest(EustoreRequest):
    """
    Base of the commands that change a store: its bucket in the operator's
    object storage, the operator's credentials, the catalog's signing key,
    its validity, and the caches to purge.
    """

    AUTH_CLASS = CloudCredentialArgs
    ARGS = [Arg('-b', '--bucket', metavar='BUCKET[/PREFIX]', required=True,
                route_to=None, help='''the store's bucket, and the prefix
                of its files in it if any'''),
            S3_URL_ARG,
            Arg('--sign-key', metavar='KEYID', route_to=None,
                help='''OpenPGP key (as gpg names it) to sign the catalog
                with (default: the "eustore-sign-key" config option; a
                store with a signed catalog needs one)'''),
            Arg('--valid-for', metavar='DAYS', type=float, route_to=None,
                help='''say in the signed catalog that it expires after
                this many days, so that users refuse it if it is served
                longer (default: the "eustore-valid-for" option, else
                never)'''),
            Arg('--purge', metavar='CACHE_URL', action='append',
                route_to=None, help='''URL of a cache (Varnish) in front of
                the store, to purge the catalog from; may be given more
                than once'''),
            Arg('--break-lock', action='store_true', route_to=None,
                help='''take the store's lock even though another publisher
                holds it (only when that one is known to be gone)''')]

    def configure(self):
        EustoreRequest.configure(self)
        bucket = self.args['bucket'].strip('/').partition('/')[0]
        if not self.args.get('dry_run'):  # a dry run lists it with the rest
            check_bucket_name(bucket)
        days = self.number_option('valid_for', 'eustore-valid-for', 'days')
        self.valid_for = days * 86400 if days else None

    def open_store(self):
        cloud = Cloud.from_command(self, s3_url=self.args.get('s3_url'),
                                   s3_only=True)
        return StoreBucket(cloud, self.args['bucket'])

    def signer(self):
        key_id = self.args.get('sign_key') or \
            store_option(self.config, 'eustore-sign-key')
        return CatalogSigner(key_id) if key_id else None

    def change_catalog(self, store, change):
        """``change(document, now, valid_for)``, as publish/transaction.py
        does it."""
        return change_catalog(
            store, lambda old, now: change(old, now, self.valid_for),
            signer=self.signer(), break_lock=self.args.get('break_lock'))

    def remove_tarballs(self, store, document, urls):
        """The keys of the tarballs deleted."""
        return remove_tarballs(store, document, urls)

    def purge(self, store):
        purge_caches(self.config, self.args.get('purge') or (),
                     [store.catalog_name, store.signature_name],
                     user_agent=self.suite.get_user_agent(),
                     loglevel=self.log.level)


class CloudRequest(EustoreRequest):
    """
    Base of the commands about what is installed in the user's cloud: its
    endpoints and access keys, found as eustore-install-image finds them
    (options, eucarc variables, the euca2ools configuration).
    """

    AUTH_CLASS = CloudCredentialArgs
    ARGS = [EC2_URL_ARG, S3_URL_ARG, IAM_URL_ARG]
