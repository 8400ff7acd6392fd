# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import binascii
import io
import logging
import os
import os.path
import sys

import six
from requestbuilder import Arg, MutuallyExclusiveArgList
from requestbuilder.exceptions import ArgumentError
from requestbuilder.mixins import FileTransferProgressBarMixin
from six.moves import input

from eustore_plugin.bundle.credentials import (check_key_matches_certificate,
                                               load_certificate,
                                               load_private_key)
from eustore_plugin.bundle.pgzip import COMPRESSION_LEVELS, DEFAULT_COMPRESSION
from eustore_plugin.cloud.auth import CloudCredentialArgs
from eustore_plugin.cloud.bootstrap import fetch_cloud_certificate
from eustore_plugin.cloud.client import (ADMIN_ALIAS, check_bucket,
                                         check_bucket_name)
from eustore_plugin.cloud.services import CloudError
from eustore_plugin.commands.base import (EC2_URL_ARG, IAM_URL_ARG, S3_URL_ARG,
                                          CatalogRequest)
from eustore_plugin.dryrun import DryRun, bucket_detail
from eustore_plugin.errors import EustoreError
from eustore_plugin.images.inflate import TarStream
from eustore_plugin.images.layout import (analyze, entry_name_base,
                                          image_name_base, registered_names)
from eustore_plugin.install import target as backend
from eustore_plugin.install.builtin import DEFAULT_UPLOAD_CONCURRENCY
from eustore_plugin.install.bundlekeys import (BundleCredentials,
                                               find_bundle_credentials)
from eustore_plugin.install.installer import install
from eustore_plugin.install.journal import Journal, undo_abandoned
from eustore_plugin.install.plan import (BUNDLE_TAGS, ROLES, SOURCE_TAGS,
                                         InstallPlan)
from eustore_plugin.install.sources import (Fetch, UserTarball, disk_source,
                                            tarball_source)
from eustore_plugin.install.workarea import WorkArea
from eustore_plugin.output import emit, warn
from eustore_plugin.signals import (Deferred, Interrupted, presses_of,
                                    signal_number)
from eustore_plugin.store.service import presence_problems
from eustore_plugin.store.urlpolicy import UrlRefused

LOG = logging.getLogger(__name__)


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
            EC2_URL_ARG, S3_URL_ARG, IAM_URL_ARG,
            Arg('--dry-run', action='store_true', route_to=None,
                help='''check all that needs no image moved (the catalog and
                its entry, your keys and certificates, the bucket, the right
                to register kernels, the names), say what would be done,
                and stop; exit 1 listing every problem found'''),
            Arg('--json', action='store_true', route_to=None,
                help='''print the result as a JSON object: the ids and names
                registered, the bucket, the manifests and the source''')]

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
        if not self.args.get('dry_run'):  # a dry run lists it with the rest
            check_bucket_name(bucket)
        self.bucket = bucket
        self.key_prefix = prefix.strip('/') + '/' if prefix.strip('/') \
            else ''

    def main(self):
        if self.args.get('dry_run'):
            return self.dry_run()
        cloud = self.open_cloud()
        credentials = BundleCredentials(**self.bundle_credentials())
        image = self.catalog_image() if self.args.get('image_name') \
            else None
        plan = self.build_plan(image)
        self.plan = plan
        if plan.registers_kernels:
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

    def bundle_credentials(self):
        """What bundling needs; the cloud's certificate from the bootstrap
        service when none is configured."""
        return find_bundle_credentials(
            self.args, self.config, lambda: fetch_cloud_certificate(self))

    def print_result(self, result):
        if self.printed_as_report(result, as_json=self.json_result):
            return
        if result.get('reused'):
            emit(u'Reused installed image {0}'.format(result['machine']))
            return
        for role in ('kernel', 'ramdisk'):
            if role in result:
                emit(u'Installed new {0} {1}'.format(role, result[role]))
        emit(u'Installed new image {0}'.format(result['machine']))

    def json_result(self, result):
        """
        What --json prints: the ids by role, the names, the bucket and key
        prefix, the manifests, where the image came from, and whether an
        installed image was reused (-y).
        """
        plan = self.plan
        reused = bool(result.get('reused'))
        ids = dict((role, result[role]) for role in ROLES
                   if result.get(role))
        names, manifests = {}, {}
        if reused:
            described = getattr(self, 'reused_image', None) or {}
            # What the cloud says, else the tags install wrote for clouds
            # that do not say.
            tags = dict((tag.get('key'), tag.get('value'))
                        for tag in described.get('tagSet') or []
                        if isinstance(tag, dict))
            names['machine'] = described.get('name') or \
                plan.names['machine']
            location = described.get('imageLocation') or \
                tags.get(BUNDLE_TAGS['manifest'])
            if location:
                manifests['machine'] = location
            for role, field in (('kernel', 'kernelId'),
                                ('ramdisk', 'ramdiskId')):
                found = described.get(field) or \
                    tags.get(BUNDLE_TAGS[role + '-id'])
                if found:
                    ids[role] = found
        else:
            for role in ROLES:
                if role in result and plan.wants(role):
                    names[role] = plan.names[role]
                    manifests[role] = plan.manifest_location(role)
            if plan.kernel_id:  # the user's own (--kernel, --ramdisk)
                ids.update(kernel=plan.kernel_id, ramdisk=plan.ramdisk_id)
        return {'ids': ids, 'names': names, 'bucket': plan.bucket,
                'key_prefix': plan.key_prefix, 'manifests': manifests,
                'source': self.json_source(plan), 'reused': reused}

    def json_source(self, plan):
        """Where the image came from: the store's entry (as SOURCE_TAGS
        tags it), or the local tarball."""
        if self.args.get('tarball'):
            return {'tarball': os.path.abspath(self.args['tarball'])}
        return dict((name, plan.tags.get(tag))
                    for name, tag in SOURCE_TAGS.items())

    # ------------------------------------------------------------------

    def catalog_image(self):
        """The catalog's entry for -i, checked before anything is read."""
        catalog = self.fetch_catalog()
        image = self.find_entry(catalog)
        for problem in self.entry_problems(catalog, image):
            raise InstallError(problem)
        return image

    def find_entry(self, catalog):
        """The catalog's entry for -i; raises unless it has a url."""
        image = catalog.find(self.args['image_name'],
                             architecture=self.args.get('architecture'))
        if not image.location and image.disk is None:
            raise InstallError('the catalog gives no url for image "{0}"'
                               .format(image.name))
        return image

    def entry_problems(self, catalog, image):
        """What stops ``image`` being installed from ``catalog``, as
        messages: a url the policy refuses, a signed catalog without the
        tarball's SHA-256."""
        problems = []
        for location in (image.location, image.disk and
                         image.disk.location):
            if location:
                try:
                    self.check_location(image, location)
                except UrlRefused as err:
                    problems.append(six.text_type(err))
        unverifiable = [artifact for artifact in (
            image if image.location else None, image.disk)
            if artifact is not None and not (artifact.sha256 or
                                             artifact.sha512)]
        if catalog.signed_by and unverifiable:
            # The signature vouches for the catalog; only a strong digest
            # in it carries that over to the tarball.
            problems.append(
                'the signed catalog gives no sha256 for image "{0}", so its '
                'tarball cannot be verified; ask the store\'s operator to '
                'publish it again'.format(image.name))
        return problems

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

    def find_installed(self, cloud, plan, image):
        """
        DescribeImages' answer for an image installed before from the same
        store entry and bytes: found by its tags, else by the name this
        install would give it, else by the name earlier versions gave it
        (eustore-<tarball name>); None if there is none, or --pad-name.
        """
        if self.args.get('pad_name'):
            return None
        found = []
        identity = dict((key, plan.tags[key]) for key in (
            SOURCE_TAGS['store'], SOURCE_TAGS['image'],
            SOURCE_TAGS['checksum']) if key in plan.tags)
        if len(identity) == 3:
            try:
                found = list(cloud.images_tagged(
                    dict(identity, **{BUNDLE_TAGS['role']: 'machine'})))
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
        found[0].setdefault('name', plan.names['machine'])
        return found[0]

    def already_installed(self, cloud, plan, image):
        """The id of the image find_installed finds, if the user reuses it
        (asked first, or -y); None if there is none to reuse."""
        found = self.find_installed(cloud, plan, image)
        if found is None:
            return None
        self.reused_image = found
        image_id, name = found.get('imageId'), found['name']
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
        for problem in self.name_collisions(cloud, plan):
            raise InstallError(problem)

    @staticmethod
    def name_collisions(cloud, plan):
        """What is in the way of the names and manifests of ``plan``, as
        messages, found one by one (a generator: the caller may stop at
        the first)."""
        for role in plan.registered_roles:
            if role != 'machine':
                taken = cloud.images_named(plan.names[role])
                if taken:
                    yield ('an image named {0} is already registered ({1}); '
                           'use --pad-name or -p to install under other '
                           'names, or --kernel and --ramdisk to use installed '
                           'ones'.format(plan.names[role],
                                         taken[0].get('imageId')))
            bucket, _, key = plan.manifest_location(role).partition('/')
            if cloud.head_object(bucket, key) is not None:
                yield ('the bucket already holds {0}, the manifest this '
                       'install would write; use --pad-name or -p to install '
                       'under other names, or another bucket'.format(
                           plan.manifest_location(role)))

    # --dry-run ---------------------------------------------------------

    def dry_run(self):
        """
        Every check of an install that moves no image, each written down
        rather than raised (see dryrun.py), then what the install would do.
        The one write is a probe object put in an existing bucket and
        deleted again.
        """
        run = DryRun()
        cloud = run.attempt('cloud', self.open_cloud, detail=lambda cloud: (
            'EC2 at {0}, S3 at {1}, {2}'.format(
                cloud.ec2.endpoint, cloud.s3.endpoint,
                'IAM at ' + cloud.iam.endpoint if cloud.iam else
                'no IAM endpoint')))
        working = set()
        if cloud is not None:
            for service, endpoint in (('ec2', cloud.ec2), ('s3', cloud.s3),
                                      ('iam', cloud.iam)):
                if endpoint is not None and run.attempt(
                        'credentials', cloud.check_credentials, service,
                        detail=lambda _, endpoint=endpoint: (
                            'accepted by {0} at {1}'.format(
                                endpoint.DESCRIPTION, endpoint.endpoint))):
                    working.add(service)
        self.dry_run_bundling(run)
        image = None
        if self.args.get('image_name'):
            image = self.dry_run_catalog(run)
            if image is None:
                return run
        # For -t, the plan is read from the tarball (its layout checked).
        plan = run.attempt('plan' if image else 'tarball', self.build_plan,
                           image, detail=lambda plan: u'{0}: {1}'.format(
                               plan.names['machine'],
                               plan.virtualization_type or 'paravirtual'))
        if plan is None:
            return run
        run.plan.update(self.dry_run_summary(plan))
        roles = plan.registered_roles
        if plan.registers_kernels:
            run.attempt('hypervisor', self.check_hypervisor_chosen, image,
                        detail=lambda _: plan.hypervisor or 'as the tarball '
                        'has it')
            if 'iam' in working:
                run.attempt('admin', self.check_may_register_kernels, cloud,
                            detail=lambda _: 'the account may register '
                            'kernels and ramdisks')
            elif cloud is not None and cloud.iam is None:
                run.passed('admin', 'not checked: no IAM endpoint is known '
                           '(give --iam-url or set EUARE_URL)')
        if 'ec2' in working:
            existing = run.attempt(
                'reuse', self.find_installed, cloud, plan, image,
                detail=lambda found: 'not installed before (no image is '
                'called {0})'.format(plan.names['machine']) if not found
                else 'image {0} is {1}; -y reuses it'.format(
                    found['name'], found.get('imageId')))
            if existing:
                image_id, name = existing.get('imageId'), existing['name']
                if self.args.get('yes'):
                    run.would(u'Would reuse installed image {0} ({1}), '
                              u'and do nothing else'.format(image_id, name))
                    return run
                run.checks.pop()
                run.failed('reuse', 'image {0} is already installed as {1}; '
                           'use -y to reuse it, or --pad-name to install '
                           'another copy'.format(name, image_id))
            elif 's3' in working:  # (a reused image's names are its own)
                collisions = run.attempt('names', lambda: list(
                    self.name_collisions(cloud, plan)))
                if collisions:
                    run.checks.pop()
                    for problem in collisions:
                        run.failed('names', problem)
                elif collisions is not None:
                    run.checks[-1]['detail'] = 'free: {0}'.format(', '.join(
                        plan.names[role] for role in roles))
        buckets = []
        if 's3' in working:
            for bucket in sorted(set(plan.bucket_for(role)
                                     for role in roles)):
                exists = run.attempt(
                    'bucket', check_bucket, cloud, bucket, plan.key_prefix,
                    detail=lambda exists, bucket=bucket: bucket_detail(
                        exists, bucket, plan.key_prefix))
                if exists is False:
                    buckets.append(bucket)
        self.dry_run_steps(run, plan, image, buckets, roles)
        return run

    def dry_run_bundling(self, run):
        """The bundling credentials: found, loaded, key and certificate a
        pair (the cloud's certificate may come from the bootstrap
        service)."""
        found = run.attempt('bundling', self.bundle_credentials)
        if found is None:
            return
        run.checks.pop()  # reported once loaded, below

        def load():
            cert = load_certificate(found['certificate'], 'user certificate')
            key = load_private_key(found['private_key'])
            check_key_matches_certificate(key, cert)
            load_certificate(found['cloud_certificate'], 'cloud certificate')
            return ('your certificate and private key are a pair; the '
                    'cloud\'s certificate loads; account {0}'.format(
                        found['account_id']))
        run.attempt('bundling', load)

    def dry_run_catalog(self, run):
        """The catalog read and its signature checked, the entry found and
        its files there: the entry, or None."""
        catalog = run.attempt('catalog', self.fetch_catalog, detail=lambda
                              catalog: 'signed by {0}'.format(
                                  catalog.signed_by) if catalog.signed_by
                              else 'not signed')
        if catalog is None:
            return None
        image = run.attempt('image', self.find_entry, catalog,
                            detail=lambda image: u'{0}{1}'.format(
                                image.name, ' ' + image.version
                                if image.version else ''))
        if image is None:
            return None
        for problem in self.entry_problems(catalog, image):
            run.failed('image', problem)
        artifact = image.disk if self.uses_disk(image) else image
        checks = [name for name in ('size', 'sha256', 'sha512', 'md5',
                                    'name_checksum')
                  if getattr(artifact, name, None) is not None]
        if any(name != 'size' for name in checks):
            run.passed('checksum', u'the catalog gives {0}'.format(
                ', '.join(name.replace('_', '-') for name in checks)))
        else:
            run.failed('checksum', 'the catalog gives no checksum for image '
                       '"{0}", so its download could not be verified; ask '
                       'the store\'s operator to publish it again'.format(
                           image.name))
        problems = presence_problems(self.service, artifact)
        for problem in problems:
            run.failed('tarball', problem)
        if not problems:
            run.passed('tarball', u'{0} is there{1}'.format(
                artifact.location, ' ({0} bytes)'.format(artifact.size)
                if artifact.size is not None else ''))
        return image

    def dry_run_summary(self, plan):
        """What --json adds to a dry run: the install's names, bucket and
        manifests, as the install's own --json would give them."""
        roles = plan.registered_roles
        return {'names': dict((role, plan.names[role]) for role in roles),
                'bucket': plan.bucket, 'key_prefix': plan.key_prefix,
                'manifests': dict((role, plan.manifest_location(role))
                                  for role in roles),
                'source': self.json_source(plan)}

    def dry_run_steps(self, run, plan, image, buckets, roles):
        if image is not None:
            artifact = image.disk if self.uses_disk(image) else image
            run.would(u'Would download {0}{1}'.format(
                artifact.location, ' ({0} bytes)'.format(artifact.size)
                if artifact.size is not None else ''))
        for bucket in buckets:
            run.would(u'Would create bucket {0}'.format(bucket))
        for role in roles:
            what = 'image' if role == 'machine' else role
            extra = ''
            if role == 'machine':
                extra = ', {0}'.format(plan.virtualization_type or
                                       'paravirtual')
                if plan.kernel_id:
                    extra += ', with kernel {0} and ramdisk {1}'.format(
                        plan.kernel_id, plan.ramdisk_id)
            run.would(u'Would bundle, upload and register {0} {1} from '
                      u'{2}{3}'.format(what, plan.names[role],
                                       plan.manifest_location(role), extra))

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
