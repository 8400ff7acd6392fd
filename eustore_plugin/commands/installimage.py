# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import os.path

from requestbuilder import Arg, MutuallyExclusiveArgList
from requestbuilder.exceptions import ArgumentError
from requestbuilder.mixins import FileTransferProgressBarMixin
import six

from eustore_plugin.bundle.pgzip import COMPRESSION_LEVELS, DEFAULT_COMPRESSION
from eustore_plugin.catalogs.catalog import BOOT_MODES
from eustore_plugin.cloud.auth import CloudCredentialArgs
from eustore_plugin.cloud.bootstrap import fetch_cloud_certificate
from eustore_plugin.cloud.client import BUNDLE_ACL, check_bucket_name
from eustore_plugin.cloud.ebs import EbsDirect
from eustore_plugin.commands.base import (EC2_URL_ARG, IAM_URL_ARG, S3_URL_ARG,
                                          CatalogRequest)
from eustore_plugin.errors import EustoreError
from eustore_plugin.install.builtin import DEFAULT_UPLOAD_CONCURRENCY
from eustore_plugin.install.bundlekeys import find_bundle_credentials
from eustore_plugin.install.ebsbacked import (DEFAULT_IMDS_SUPPORT,
                                              DEFAULT_ROOT_DEVICE,
                                              IMDS_OPTIONAL, EbsBacked)
from eustore_plugin.install.instancestore import InstanceStore
from eustore_plugin.install.plan import (DEFAULT_VOLUME_TYPE,
                                         ROOT_VOLUME_TYPES, InstallOptions)
from eustore_plugin.install.preflight import InstallContext, install_checks
from eustore_plugin.install.run import InstallResult, carry_out
from eustore_plugin.install.snapshot import DEFAULT_CONCURRENCY
from eustore_plugin.install.sources import Fetch, warn_unverified
from eustore_plugin.install.target import RequestSettings
from eustore_plugin.output import emit


class InstallImage(CatalogRequest, FileTransferProgressBarMixin):
    DESCRIPTION = '''\
        Download an image from an image store, then bundle, upload and
        register its kernel, ramdisk and machine image in your cloud; or,
        with --ebs, write its whole disk into an EBS snapshot and register
        an EBS-backed image of it.

        The tarball is checked against the catalog (size, SHA-256, MD5 or a
        euca2ools 2 checksum name, whichever it has) before anything is
        registered.  If the install fails or is interrupted, whatever it
        uploaded or registered is removed again; an install killed before it
        could do so is cleaned up by the next one into the same cloud.'''
    AUTH_CLASS = CloudCredentialArgs
    ARGS = [MutuallyExclusiveArgList(
                Arg('-i', '--image-name', '--image_name', dest='image_name',
                    metavar='NAME', route_to=None,
                    help='name of the image to install, from the store'),
                Arg('-t', '--tarball', metavar='FILE', route_to=None,
                    help='''install this local image tarball instead of one
                    from the store (needs -s and -a)''')).required(),
            Arg('-s', '--description', route_to=None,
                help='description of the image (default: the catalog\'s)'),
            Arg('-a', '-r', '--architecture', metavar='ARCH', route_to=None,
                help='''architecture of the image: i386, x86_64, ...
                (default: the catalog's)'''),
            Arg('-p', '--prefix', route_to=None, help='''base of the names
                of the bundles and registered images (default: the store
                entry's name; eustore-<tarball name> for -t and for entries
                named by a checksum)'''),
            Arg('-b', '--bucket', metavar='BUCKET[/PREFIX]', route_to=None,
                help='''bucket to upload the bundles to (created if
                missing), and a key prefix for them if given (required
                without --ebs)'''),
            Arg('-k', '--kernel-type', '--kernel_type', '--hypervisor',
                dest='hypervisor', choices=('xen', 'kvm', 'universal'),
                route_to=None, help='''which of a tarball's
                hypervisor-specific kernels to install (xen or kvm;
                universal: the single kernel)'''),
            Arg('-d', '--dir', '--directory', dest='directory',
                metavar='DIR', route_to=None, help='''directory for large
                temporary files (in a directory of its own inside it,
                eustore-install/); a downloaded tarball is kept there so that
                running again does not download it again'''),
            Arg('--kernel', metavar='EKI', route_to=None, help='''use this
                already registered kernel instead of the tarball's (needs
                --ramdisk)'''),
            Arg('--ramdisk', metavar='ERI', route_to=None, help='''use this
                already registered ramdisk instead of the tarball's (needs
                --kernel)'''),
            Arg('--separate-buckets', action='store_true', route_to=None,
                help='''put the kernel and ramdisk in their own buckets,
                BUCKET-kernel and BUCKET-ramdisk'''),
            Arg('--virtualization-type', choices=('paravirtual', 'hvm'),
                route_to=None, help='''how the image boots (default: the
                catalog's, else decided by whether the tarball has a
                kernel)'''),
            Arg('--pad-name', action='store_true', route_to=None,
                help='''add 8 random hex digits to the registered names, to
                install another copy of an image'''),
            Arg('-y', '--yes', action='store_true', route_to=None,
                help='''reuse an image already installed from the same
                tarball without asking'''),
            Arg('--upload-concurrency', metavar='N', type=int,
                route_to=None, help='''bundle parts to upload at once with
                the built-in bundler (default: {0}); with --ebs, blocks
                (default: {1})'''.format(DEFAULT_UPLOAD_CONCURRENCY,
                                         DEFAULT_CONCURRENCY)),
            Arg('--acl', metavar='ACL', route_to=None, help='''canned ACL
                of the uploaded bundles (default: {0}, which Eucalyptus and
                EC2 need to read them; "private" where the object store does
                not know it, as Ceph's does not, and the cloud reads bundles
                with its owner's keys)'''.format(BUNDLE_ACL)),
            Arg('--compression-level', choices=COMPRESSION_LEVELS,
                route_to=None, help='''how hard the built-in bundler
                compresses: fast, balanced or small (default: {0}, the
                fastest here; small saves a few percent of upload)'''
                .format(DEFAULT_COMPRESSION)),
            Arg('-c', '--cert', metavar='FILE', route_to=None,
                help='''your X.509 certificate, for bundling (default:
                $EC2_CERT)'''),
            Arg('--privatekey', metavar='FILE', route_to=None,
                help='your private key (default: $EC2_PRIVATE_KEY)'),
            Arg('--ec2cert', metavar='FILE', route_to=None,
                help="the cloud's certificate (default: $EUCALYPTUS_CERT)"),
            Arg('-u', '--user', metavar='ACCOUNT', route_to=None,
                help='your account ID (default: $EC2_USER_ID)'),
            Arg('--ebs', action='store_true', route_to=None,
                help='''install an EBS-backed image: the whole disk written
                into a new snapshot through the EBS direct APIs, registered
                as the image's root device (no bucket, no bundling)'''),
            Arg('--volume-size', metavar='GiB', type=int, route_to=None,
                help='''with --ebs, the size of the image's volume (default:
                the disk's, rounded up to whole GiB)'''),
            Arg('--volume-type', choices=sorted(ROOT_VOLUME_TYPES),
                route_to=None,
                help='''with --ebs, the root volume's type (default:
                {0})'''.format(DEFAULT_VOLUME_TYPE)),
            Arg('--boot-mode', choices=BOOT_MODES, route_to=None,
                help='''with --ebs, the firmware the image boots with
                (default: the store's, else uefi on arm64, else
                legacy-bios)'''),
            Arg('--no-ena', dest='ena', action='store_false', default=None,
                route_to=None, help='''with --ebs, do not mark the image as
                having the ENA network driver (marked by default)'''),
            Arg('--imds-support', choices=(DEFAULT_IMDS_SUPPORT,
                                           IMDS_OPTIONAL), route_to=None,
                help='''with --ebs, v2.0: instances launched from the image
                need IMDSv2 session tokens (the default); optional: they
                may use IMDSv1 too'''),
            Arg('--root-device-name', metavar='DEVICE', route_to=None,
                help='''with --ebs, the root device's name (default:
                {0})'''.format(DEFAULT_ROOT_DEVICE)),
            Arg('--ebs-url', metavar='URL', route_to=None,
                help='''with --ebs, the EBS direct APIs' endpoint (default:
                $EBS_URL, the region's ebs-url, else AWS's for AWS's
                EC2)'''),
            EC2_URL_ARG, S3_URL_ARG, IAM_URL_ARG,
            Arg('--dry-run', action='store_true', route_to=None,
                help='''check all that needs no image moved (the catalog and
                its entry, your keys and certificates, the bucket, the right
                to register kernels, the names; with --ebs, the EBS direct
                APIs), say what would be done, and stop; exit 1 listing
                every problem found'''),
            Arg('--json', action='store_true', route_to=None,
                help='''print the result as a JSON object: the ids and names
                registered, the bucket and the manifests (with --ebs, the
                root device type and the snapshot), and the source''')]

    def configure(self):
        CatalogRequest.configure(self)
        if bool(self.args.get('kernel')) != bool(self.args.get('ramdisk')):
            raise ArgumentError('--kernel and --ramdisk go together: give '
                                'both, or neither to install the tarball\'s')
        if self.args.get('tarball'):
            if not (self.args.get('description') and
                    self.args.get('architecture')):
                raise ArgumentError('-t/--tarball needs -s/--description '
                                    'and -a/--architecture')
            if not os.path.isfile(self.args['tarball']):
                raise ArgumentError('-t/--tarball: no such file: {0}'
                                    .format(self.args['tarball']))
        directory = self.args.get('directory')
        if directory and not os.path.isdir(directory):
            raise ArgumentError('-d/--dir: {0} is not a directory'
                                .format(directory))
        bucket, _, prefix = (self.args.get('bucket') or '').partition('/')
        self.options = InstallOptions(
            bucket=bucket or None, key_prefix=prefix.strip('/') + '/'
            if prefix.strip('/') else '', **dict(
                (name, self.args.get(name)) for name in InstallOptions.FIELDS
                if name not in ('bucket', 'key_prefix')))
        try:
            self.options.check()
        except EustoreError as err:
            raise ArgumentError(six.text_type(err))
        if bucket and not self.args.get('dry_run'):  # a dry run lists it
            check_bucket_name(bucket)

    def main(self):
        """
        The install's checks (install/preflight.py), each problem listed
        with --dry-run, the first one fatal otherwise; then the install
        (install/run.py), unless an installed image is reused.
        """
        dry_run = bool(self.args.get('dry_run'))
        kind = EbsBacked(self.options, self.open_ebs) if self.options.ebs \
            else InstanceStore(self.options)
        context = InstallContext(
            self.options, kind, self.service,
            open_cloud=lambda: self.open_cloud(
                ec2_only=kind.services == ('ec2',)),
            fetch_catalog=self.fetch_catalog,
            find_bundle_keys=self.bundle_credentials, dry_run=dry_run)
        checks = install_checks(context.kind)
        if dry_run:
            return checks.dry_run(context)
        checks.run(context)
        if context.reused is not None:
            return InstallResult(context.plan, reused=context.reused,
                                 credentials=context.credentials)
        return carry_out(
            context, Fetch(self.service.open_url, self.progress_bar,
                           warn_unverified, self.pace),
            progress=self.progress_bar, debug=self.debug,
            settings=RequestSettings(self.config, self.args.get('region'),
                                     self.log.level))

    def print_result(self, result):
        if self.printed_as_report(result, as_json=InstallResult.to_json):
            return
        for line in result.lines():
            emit(line)

    def open_ebs(self, cloud):
        """The EBS direct APIs of ``cloud``, as --ebs-url and the
        configuration name them."""
        return EbsDirect.from_command(self, cloud,
                                      url=self.args.get('ebs_url'))

    def bundle_credentials(self):
        """What bundling needs; the cloud's certificate from the bootstrap
        service when none is configured."""
        return find_bundle_credentials(
            self.args, self.config, lambda: fetch_cloud_certificate(self))

    def progress_bar(self, label, maxval):
        bar = self.get_progressbar(label=label, maxval=maxval)
        bar.start()
        return bar
