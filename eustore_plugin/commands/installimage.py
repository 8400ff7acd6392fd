# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import binascii
import io
import logging
import os
import os.path
import sys

from requestbuilder import Arg, MutuallyExclusiveArgList
from requestbuilder.exceptions import ArgumentError
from requestbuilder.mixins import FileTransferProgressBarMixin
import six
from six.moves import input

from eustore_plugin import backend
from eustore_plugin.builtin import (DEFAULT_UPLOAD_CONCURRENCY,
                                    BundleCredentials)
from eustore_plugin.bundle import COMPRESSION_LEVELS, DEFAULT_COMPRESSION
from eustore_plugin.cloud import (EC2_URL_ARG, IAM_URL_ARG, S3_URL_ARG, Cloud,
                                  CloudCredentialArgs, CloudError,
                                  check_bucket_name, find_bundle_credentials)
from eustore_plugin.commands.base import CatalogRequest
from eustore_plugin.errors import EustoreError
from eustore_plugin.inflate import TarStream
from eustore_plugin.installer import (BUNDLE_TAGS, SOURCE_TAGS, InstallPlan,
                                      install)
from eustore_plugin.journal import Journal, undo_abandoned
from eustore_plugin.layout import (analyze, entry_name_base, image_name_base,
                                   registered_names)
from eustore_plugin.output import emit, warn
from eustore_plugin.signals import (Deferred, Interrupted, presses_of,
                                    signal_number)
from eustore_plugin.imagesource import (Fetch, UserTarball, disk_source,
                                        tarball_source)
from eustore_plugin.urlpolicy import UrlRefused
from eustore_plugin.workarea import WorkArea


LOG = logging.getLogger('eustore.installimage')

# The account of a Eucalyptus cloud's administrator, the only one allowed to
# register kernels and ramdisks.
ADMIN_ALIAS = 'eucalyptus'


class InstallError(EustoreError):
    pass


class InstallImage(CatalogRequest, FileTransferProgressBarMixin):
    DESCRIPTION = '''\
        Download an image from an image store, then bundle, upload and
        register its kernel, ramdisk and machine image in your cloud.

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
            Arg('-b', '--bucket', metavar='BUCKET[/PREFIX]', required=True,
                route_to=None, help='''bucket to upload the bundles to
                (created if missing), and a key prefix for them if
                given'''),
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
                the built-in bundler (default: {0})'''.format(
                    DEFAULT_UPLOAD_CONCURRENCY)),
            Arg('--compression-level', choices=COMPRESSION_LEVELS,
                route_to=None, help='''how hard the built-in bundler
                compresses: fast, balanced or small (default: {0}, the
                fastest here; small saves a few percent of upload)'''
                .format(DEFAULT_COMPRESSION)),
            Arg('-c', '--cert', metavar='FILE', route_to=None,
                help='your X.509 certificate (default: $EC2_CERT)'),
            Arg('--privatekey', metavar='FILE', route_to=None,
                help='your private key (default: $EC2_PRIVATE_KEY)'),
            Arg('--ec2cert', metavar='FILE', route_to=None,
                help="the cloud's certificate (default: $EUCALYPTUS_CERT)"),
            Arg('-u', '--user', metavar='ACCOUNT', route_to=None,
                help='your account ID (default: $EC2_USER_ID)'),
            EC2_URL_ARG, S3_URL_ARG, IAM_URL_ARG]

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
        concurrency = self.args.get('upload_concurrency')
        if concurrency is not None and not 1 <= concurrency <= 64:
            raise ArgumentError('--upload-concurrency must be 1 to 64')
        bucket, _, prefix = self.args['bucket'].partition('/')
        check_bucket_name(bucket)
        self.bucket = bucket
        self.key_prefix = prefix.strip('/') + '/' if prefix.strip('/') \
            else ''

    def main(self):
        cloud = Cloud.from_command(self, ec2_url=self.args.get('ec2_url'),
                                   s3_url=self.args.get('s3_url'),
                                   iam_url=self.args.get('iam_url'))
        credentials = BundleCredentials(
            **find_bundle_credentials(self.args, self.config))
        image = self.catalog_image() if self.args.get('image_name') \
            else None
        plan = self.build_plan(image)
        if plan.virtualization_type != 'hvm' and not plan.kernel_id:
            self.check_may_register_kernels(cloud)
            self.check_hypervisor_chosen(image)
        # Before the names are checked: what a run killed with -9 left is
        # not "already installed", nor in the way of running it again.
        cloud_id = cloud.identity(credentials.account_id)
        undo_abandoned(cloud, cloud_id, report=warn)
        existing = self.already_installed(cloud, plan, image)
        if existing:
            return {'machine': existing, 'reused': True}
        self.check_names_free(cloud, plan)

        journal = Journal(cloud_id)
        registered = {}
        with WorkArea(self.args.get('directory')) as area:
            strategy = backend.install_strategy(
                self, cloud, credentials, journal, area.run_dir,
                upload_concurrency=self.args.get('upload_concurrency'),
                progress=self.progress_bar,
                writer_options={'compression':
                                self.args.get('compression_level')})
            try:
                source = self.image_source(image, plan, strategy, area)
                install(plan, source, strategy, cloud, journal,
                        report=registered.__setitem__)
            except BaseException as err:
                strategy.quiesce()
                self.roll_back(cloud, journal, err)
            journal.finish()
        return registered

    def print_result(self, result):
        if result.get('reused'):
            emit(u'Reused installed image {0}'.format(result['machine']))
            return
        for role in ('kernel', 'ramdisk'):
            if role in result:
                emit(u'Installed new {0} {1}'.format(role, result[role]))
        emit(u'Installed new image {0}'.format(result['machine']))

    # ------------------------------------------------------------------

    def catalog_image(self):
        """The catalog's entry for -i, checked before anything is read."""
        catalog = self.fetch_catalog()
        image = catalog.find(self.args['image_name'],
                             architecture=self.args.get('architecture'))
        if not image.location and image.disk is None:
            raise InstallError('the catalog gives no url for image "{0}"'
                               .format(image.name))
        try:
            for location in (image.location, image.disk and
                             image.disk.location):
                if location:
                    self.service.policy.check(location, 'image "{0}"'.format(
                        image.name))
        except UrlRefused as err:
            raise InstallError(six.text_type(err))
        unverifiable = [artifact for artifact in (
            image if image.location else None, image.disk)
            if artifact is not None and not (artifact.sha256 or
                                             artifact.sha512)]
        if catalog.signed_by and unverifiable:
            # The signature vouches for the catalog; only a strong digest
            # in it carries that over to the tarball.
            raise InstallError(
                'the signed catalog gives no sha256 for image "{0}", so its '
                'tarball cannot be verified; ask the store\'s operator to '
                'publish it again'.format(image.name))
        return image

    def build_plan(self, image):
        tags = {}
        if image is not None:
            tarball = image.location or image.disk.location
            description = self.args.get('description') or image.description
            architecture = self.args.get('architecture') or \
                image.architecture
            virt_type = self.args.get('virtualization_type') or \
                image.virtualization_type
            if self.uses_disk(image):
                virt_type = 'hvm'
            tags = self.source_tags(image)
        else:
            tarball = self.args['tarball']
            description = self.args['description']
            architecture = self.args['architecture']
            virt_type = self.args.get('virtualization_type') or \
                self.local_virtualization_type(tarball)
        if not architecture:
            raise InstallError('the catalog does not say which architecture '
                               'the image is for; give it with -a')
        pad = binascii.hexlify(os.urandom(4)).decode('ascii') \
            if self.args.get('pad_name') else None
        names = registered_names(self.args.get('prefix') or
                                 self.name_base(image, tarball), pad)
        return InstallPlan(
            names, architecture, self.bucket, key_prefix=self.key_prefix,
            description=description, hypervisor=self.args.get('hypervisor'),
            virtualization_type=virt_type,
            kernel_id=self.args.get('kernel'),
            ramdisk_id=self.args.get('ramdisk'),
            separate_buckets=self.args.get('separate_buckets'), tags=tags)

    def source_tags(self, image):
        """
        Where an image comes from, to be told later (describe --installed):
        the store, its kind, the entry's name and version, and the digest
        of what was installed, as tags on every image registered.
        """
        artifact = image.disk if self.uses_disk(image) else image
        checksum = None
        for algorithm in ('sha512', 'sha256', 'md5'):
            if getattr(artifact, algorithm, None):
                checksum = '{0}:{1}'.format(algorithm,
                                            getattr(artifact, algorithm))
                break
        tags = {SOURCE_TAGS['store']: self.service.endpoint,
                SOURCE_TAGS['format']: image.source_format,
                SOURCE_TAGS['image']: image.name,
                SOURCE_TAGS['version']: image.version,
                SOURCE_TAGS['checksum']: checksum}
        return dict((key, value) for key, value in tags.items() if value)

    @staticmethod
    def name_base(image, tarball):
        """
        What images are named after: the store entry's name; the tarball's
        (``eustore-<tarball name>``, as euca2ools 3.0 and this tool before
        named every install) for -t and for euca2ools 2 entries, whose
        names are checksums.
        """
        if image is None or image.name_checksum is not None:
            return image_name_base(tarball)
        return entry_name_base(image.name)

    def local_virtualization_type(self, path):
        """A local tarball says itself whether it has a kernel."""
        with io.open(path, 'rb') as tarball:
            with TarStream(tarball) as tar:
                members = list(tar)
        return analyze(members, hypervisor=self.args.get('hypervisor'),
                       virtualization_type=None).virtualization_type

    def check_may_register_kernels(self, cloud):
        aliases = cloud.account_aliases()
        if aliases is None:
            warn('no IAM endpoint is known, so whether this account may '
                 'register kernels was not checked (give --iam-url or set '
                 'EUARE_URL)')
        elif ADMIN_ALIAS not in aliases:
            raise InstallError(
                'only the cloud administrator ("{0}" account) may register '
                'kernels and ramdisks; ask for the ids of installed ones and '
                'pass them with --kernel and --ramdisk'.format(ADMIN_ALIAS))

    def already_installed(self, cloud, plan, image):
        """
        An image installed before from the same store entry and bytes, to
        reuse (asking first, or with -y): found by its tags, else by the
        name this install would give it, else by the name earlier versions
        gave it (eustore-<tarball name>).  --pad-name installs another copy.
        """
        if self.args.get('pad_name'):
            return None
        found = []
        identity = dict((key, plan.tags[key]) for key in (
            SOURCE_TAGS['store'], SOURCE_TAGS['image'],
            SOURCE_TAGS['checksum']) if key in plan.tags)
        if len(identity) == 3:
            try:
                found = [candidate for candidate in cloud.images_tagged(
                    dict(identity, **{BUNDLE_TAGS['role']: 'machine'}))]
            except CloudError as err:  # a cloud without tag filters
                LOG.debug('looking images up by tags failed (%s)', err)
        names = [plan.names['machine']]
        if image is not None and not self.args.get('prefix'):
            names.append(image_name_base(image.location or
                                         image.disk.location))
        for name in names:
            if found:
                break
            found = cloud.images_named(name)
        if not found:
            return None
        image_id = found[0].get('imageId')
        name = found[0].get('name') or plan.names['machine']
        if self.args.get('yes'):
            return image_id
        question = ('image {0} is already installed as {1}; reuse it? '
                    '[y/N] '.format(name, image_id))
        if not sys.stdin.isatty():
            raise InstallError(
                'image {0} is already installed as {1}; use -y to reuse it, '
                'or --pad-name to install another copy'.format(name,
                                                               image_id))
        if input(question).strip().lower() in ('y', 'yes'):
            return image_id
        raise InstallError('not reusing {0}; use --pad-name to install '
                           'another copy'.format(image_id))

    def check_names_free(self, cloud, plan):
        """
        Before anything is uploaded: no image has a name this install
        registers, and no object is where its manifests go.  What this run
        creates is then its own, by name as well as by id.
        """
        roles = ('machine',) if plan.kernel_id else \
            ('kernel', 'ramdisk', 'machine')
        for role in roles:
            if role != 'machine':
                taken = cloud.images_named(plan.names[role])
                if taken:
                    raise InstallError(
                        'an image named {0} is already registered ({1}); '
                        'use --pad-name or -p to install under other names, '
                        'or --kernel and --ramdisk to use installed ones'
                        .format(plan.names[role], taken[0].get('imageId')))
            bucket, _, key = plan.manifest_location(role).partition('/')
            if cloud.head_object(bucket, key) is not None:
                raise InstallError(
                    'the bucket already holds {0}, the manifest this install '
                    'would write; use --pad-name or -p to install under '
                    'other names, or another bucket'.format(
                        plan.manifest_location(role)))

    def image_source(self, image, plan, strategy, area):
        """
        Where the image is read from: the local file given with -t; or,
        from the store, its tarball or (see uses_disk) its whole-disk image,
        straight off the network into the bundler where it can be (nothing
        on disk but bundle parts), unless -d asks to keep a copy or the
        strategy needs a file (euca2ools reads each member in a pass of its
        own).
        """
        if image is None:
            return UserTarball(self.args['tarball'])
        fetch = Fetch(self.service.open_url, self.progress_bar,
                      self.warn_unverified, self.stall_timeout)
        if self.uses_disk(image):
            return disk_source(fetch, image, area,
                               strategy.needs_local_tarball)
        return tarball_source(fetch, image, area,
                              strategy.needs_local_tarball)

    def uses_disk(self, image):
        """
        Whether the store's whole-disk image is installed: when it has no
        tarball, or HVM is asked for and it has a disk image.
        """
        return image.disk is not None and (
            not image.location or
            self.args.get('virtualization_type') == 'hvm')

    @staticmethod
    def warn_unverified(name):
        warn('the store gives no size or checksum for image "{0}", so the '
             'download could not be verified'.format(name))

    def check_hypervisor_chosen(self, image):
        """
        Fail before downloading when the catalog says the image has a
        kernel per hypervisor and none was chosen.
        """
        if image is None or self.args.get('hypervisor') or \
                image.single_kernel is not False or \
                len(image.hypervisors) < 2:
            return
        raise InstallError(
            'image {0} has a kernel for each hypervisor; choose one of: {1} '
            '(-k/--hypervisor)'.format(image.name,
                                       ', '.join(sorted(image.hypervisors))))

    def progress_bar(self, label, maxval):
        bar = self.get_progressbar(label=label, maxval=maxval)
        bar.start()
        return bar

    def roll_back(self, cloud, journal, err):
        """
        Undo what the run created, then fail with one clear line (exit
        128 + the signal when interrupted).  The undo is not cut short by a
        second Ctrl-C (the first one being the one that started it, if
        one did); a third stops it, and what is left is said exactly and
        kept for the next run.
        """
        exc_info = sys.exc_info()
        interrupted = isinstance(err, KeyboardInterrupt)
        created = not journal.empty
        try:
            with Deferred('removing what this run created',
                          presses=presses_of(err) if interrupted else 0):
                left = journal.undo(cloud)
        except Interrupted as again:
            journal.keep()
            left = [action.describe() for action in journal.pending()]
            raise Interrupted(again.signum, self.left_over_message(
                'interrupted while removing what this run created', left,
                journal))
        if interrupted:
            message = 'interrupted'
        elif self.debug:
            six.reraise(*exc_info)
        else:
            message = six.text_type(err) or err.__class__.__name__
        if left:
            journal.keep()
            message = self.left_over_message(
                message + '; could not remove everything this run created',
                left, journal)
        elif created:
            message += '; what this run uploaded or registered was removed'
        if interrupted:
            raise Interrupted(signal_number(err), message)
        raise InstallError(message)

    @staticmethod
    def left_over_message(message, left, journal):
        return ('{0}: left {1} (written down in {2}; the next install into '
                'this cloud removes them)'.format(message, '; '.join(left),
                                                  journal.path))
