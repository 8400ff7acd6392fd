# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The instance-store target through euca2ools' own requests (Python 2.7,
when suite.py finds euca2ools and its bundle commands load).

euca2ools and the plugin run on the same requestbuilder, patched by
compat.py at import: its signers and its retry of a 500 or 503 are replaced
for every user of it in the process, euca2ools included.  That is
deliberate: those are bugs of requestbuilder 0.7.1 (proven against botocore
in tests/test_compat.py), and euca2ools 3.4 hits them as the plugin does.
Everything else euca2ools does is its own.
"""

from __future__ import absolute_import

import contextlib
import logging
import os
import subprocess
import sys
import threading

from requestbuilder.exceptions import ServerError

from eustore_plugin.bundle.manifest import parse_manifest
from eustore_plugin.cloud.client import BUNDLE_ACL
from eustore_plugin.cloud.services import error_from_response
from eustore_plugin.errors import EustoreError
from eustore_plugin.install.journal import CreatedBucket, PutObject
from eustore_plugin.install.target import RunBuckets, bundle_stored
from eustore_plugin.output import warn

LOG = logging.getLogger(__name__)

# ------------------------------------------------------------- euca2ools

# What the feeder process runs: the member at a position in a tarball,
# copied to stdout.  By position, so that no name from the tarball is ever
# an argument: a member named "--index-file=..." stays a name.
_FEEDER = '''
import errno, shutil, sys, tarfile
out = getattr(sys.stdout, 'buffer', sys.stdout)
wanted = int(sys.argv[2])
try:
    with tarfile.open(sys.argv[1], mode='r|gz', bufsize=1 << 20) as tar:
        for index, member in enumerate(tar):
            if index == wanted:
                shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
                break
except (IOError, OSError) as err:
    if err.errno != errno.EPIPE:
        raise
    sys.exit(141)  # euca2ools stopped reading: its error says why
'''
# Bundles re-uploaded after euca2ools left one of its parts short, before
# the install fails.
EUCA2OOLS_BUNDLE_ATTEMPTS = 3
EUCA2OOLS_PART_SIZE = 10485760


# What OpenSSL 3 writes to stderr for each `openssl rsautl` that euca2ools
# runs to encrypt a bundle's key (two a bundle): nothing a user can act on.
OPENSSL_NOISE = (b"The command rsautl was deprecated in version 3.0. Use "
                 b"'pkeyutl' instead.",)


@contextlib.contextmanager
def stderr_without(noise):
    """
    While inside, file descriptor 2 (the children euca2ools starts write to
    it too) goes through a pipe to the real stderr, without the lines in
    ``noise``: the rest arrives as it is written, in order.
    """
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, 'rb') as lines:
            for line in iter(lines.readline, b''):
                if line.rstrip(b'\r\n') not in noise:
                    os.write(real, line)
    thread = threading.Thread(target=forward, name='stderr-filter')
    thread.daemon = True
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # the pipe ends when its last writer is gone
        thread.join(10)
        if not thread.is_alive():  # (else it still writes to ``real``)
            os.close(real)


@contextlib.contextmanager
def refusals_named(service):
    """euca2ools' errors from the cloud (a tuple of status, reason and
    body as their text) as the plugin's: one line naming the service."""
    try:
        yield
    except ServerError as err:
        raise error_from_response(service, err.response)


class Euca2oolsBundleTarget(object):
    """
    Bundles, uploads and registers through euca2ools' own requests, so that
    users get euca2ools' behaviour (and its configuration handling).
    euca2ools writes each manifest as soon as its parts are up, so a
    member's bundle is made when it is finished (with the kernel and
    ramdisk ids known), from the tarball on disk.  ``settings``
    (target.RequestSettings) is what euca2ools' requests are built with.
    """

    needs_local_file = True

    def __init__(self, cloud, credentials, journal, commands, workdir,
                 settings, acl=BUNDLE_ACL):
        self.cloud = cloud
        self.credentials = credentials
        self.journal = journal
        self.bundle_command, self.register_command = commands
        self.workdir = workdir
        self.settings = settings
        self.acl = acl
        self.buckets = RunBuckets(cloud, journal)
        self._threads_before = set(threading.enumerate())

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
            ('region', self.settings.region)) if value)
        # "REGION::URL" keeps the region the plugin signs for: a URL alone
        # would leave euca2ools with none.
        common['url'] = '{0}::{1}'.format(service.region_name,
                                          service.endpoint) \
            if service.region_name else service.endpoint
        return common

    def start(self, member, role, plan):
        if member.tarball_path is None and member.file_path is None:
            raise EustoreError('BUG: euca2ools needs the image on disk')
        self.buckets.ensure(plan.bucket_for(role))
        return _Euca2oolsBundle(self, member, role, plan)

    def accepts(self, plan, layout):
        """Every layout bundles."""

    def register(self, params):
        args = dict(self._common_args(self.cloud.ec2), **params)
        with refusals_named(self.cloud.ec2):
            return self.register_command(config=self.settings.config,
                                         loglevel=self.settings.loglevel,
                                         **args).main()['imageId']

    def quiesce(self):
        """euca2ools sends each part from a daemon thread of its own: wait
        for those, so that no part lands after an undo."""
        for thread in set(threading.enumerate()) - self._threads_before:
            if thread is not threading.current_thread():
                thread.join(60)

    def bundle(self, member, role, plan, kernel_id=None, ramdisk_id=None):
        """One euca2ools BundleAndUploadImage run; returns its result."""
        creds = self.credentials
        # euca2ools reads the image in processes it forks, which would
        # inherit (and so hold open) the write end of any pipe fed from
        # here: the feeder process holds it alone, so euca2ools sees the
        # member end when it exits.
        if member.file_path is not None:  # a whole-disk image's raw file
            feeder = subprocess.Popen(['cat', '--', member.file_path],
                                      stdout=subprocess.PIPE)
        else:
            feeder = subprocess.Popen(
                [sys.executable, '-c', _FEEDER, member.tarball_path,
                 str(member.index)], stdout=subprocess.PIPE)
        bucket = plan.bucket_for(role)
        args = dict(self._common_args(self.cloud.s3), image=feeder.stdout,
                    image_size=member.size, prefix=plan.names[role],
                    arch=plan.architecture, image_type=role,
                    bucket=bucket + '/' + plan.key_prefix
                    if plan.key_prefix else bucket,
                    destination=self.workdir, cert=creds.certificate,
                    privatekey=creds.private_key,
                    ec2cert=creds.cloud_certificate, user=creds.account_id,
                    show_progress=False,
                    # Defaults argparse would fill in on euca2ools' command
                    # line; requestbuilder does not when called like this.
                    max_pending_parts=2, part_size=EUCA2OOLS_PART_SIZE,
                    acl=self.acl)
        if role == 'machine':
            if kernel_id:
                args.update(kernel=kernel_id, ramdisk=ramdisk_id)
        else:
            # What older clouds read to tell a kernel or ramdisk
            # (docs/formats.md, "kernel and ramdisk manifests").
            args[role] = 'true'
        command = self.bundle_command(config=self.settings.config,
                                      loglevel=self.settings.loglevel,
                                      **args)
        self._journal_puts(command.service)
        try:
            with refusals_named(self.cloud.s3), \
                    stderr_without(OPENSSL_NOISE):
                result = command.main()
        finally:
            feeder.stdout.close()
            status = feeder.wait()
        if status != 0:
            # euca2ools takes a short image for a whole one without a word.
            raise EustoreError('reading {0} out of {1} failed (exit status '
                               '{2}); nothing was registered from it'.format(
                                   member.name, member.tarball_path or
                                   member.file_path, status))
        return result

    def _journal_puts(self, service):
        """Write down every object euca2ools is about to PUT, by its exact
        key: its requests share this service object."""
        send = service.send_request
        journal = self.journal

        def send_request(method='GET', path=None, *args, **kwargs):
            if method == 'PUT' and path:
                bucket, _, key = path.partition('/')
                journal.add(PutObject(bucket=bucket, key=key) if key else
                            CreatedBucket(bucket=bucket))
            return send(method, path, *args, **kwargs)
        service.send_request = send_request

    def check_uploaded(self, result):
        """
        Problems with the bundle euca2ools says it uploaded, as a list:
        euca2ools 3.4 can announce a part to its uploader before the part
        file is fully written, and then uploads it short without noticing
        (docs/threat-model.md, "euca2ools short parts").  Every part the
        manifest names must be in the bucket, and their sizes must add up to
        its bundled size, each but the last a whole part.
        """
        bucket, _, key = result['manifests'][0]['key'].partition('/')
        manifest = parse_manifest(self.cloud.get_object(bucket, key))
        prefix = key.rsplit('/', 1)[0] + '/' if '/' in key else ''
        problems, total = [], 0
        for part in manifest.parts:
            headers = self.cloud.head_object(bucket, prefix + part.filename)
            if headers is None:
                problems.append('part {0} is missing'.format(part.filename))
                continue
            size = int(headers.get('Content-Length') or 0)
            total += size
            last = part.index == len(manifest.parts) - 1
            expected = manifest.bundled_size - \
                EUCA2OOLS_PART_SIZE * part.index if last else \
                EUCA2OOLS_PART_SIZE
            if size != expected:
                problems.append('part {0} is {1} bytes in the bucket where '
                                'the manifest needs {2}'.format(
                                    part.filename, size, expected))
        if not problems and total != manifest.bundled_size:
            problems.append('its parts hold {0} bytes where the manifest '
                            'says {1}'.format(total, manifest.bundled_size))
        return problems


class _Euca2oolsBundle(object):
    """A member to bundle with euca2ools once the ids it needs are known."""

    def __init__(self, target, member, role, plan):
        self.target = target
        self.member = member
        self.role = role
        self.plan = plan

    def finish(self, kernel_id=None, ramdisk_id=None):
        target = self.target
        for attempt in range(1, EUCA2OOLS_BUNDLE_ATTEMPTS + 1):
            result = target.bundle(self.member, self.role, self.plan,
                                   kernel_id, ramdisk_id)
            problems = target.check_uploaded(result)
            if not problems:
                return bundle_stored(result['manifests'][0]['key'])
            LOG.debug('euca2ools uploaded a damaged bundle of %s (%s); '
                      'attempt %d of %d', self.plan.names[self.role],
                      '; '.join(problems), attempt + 1,
                      EUCA2OOLS_BUNDLE_ATTEMPTS)
            if attempt < EUCA2OOLS_BUNDLE_ATTEMPTS:
                warn('euca2ools uploaded the {0} bundle damaged ({1}); '
                     'uploading it again'.format(self.role, problems[0]))
        raise EustoreError(
            'euca2ools uploaded the {0} bundle damaged {1} times (last: {2}); '
            'nothing was registered from it'.format(
                self.role, EUCA2OOLS_BUNDLE_ATTEMPTS, '; '.join(problems)))
