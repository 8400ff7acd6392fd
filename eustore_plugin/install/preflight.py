# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The checks of an install, as one ordered list (:func:`install_checks`):
the install runs it and stops at the first problem; ``--dry-run`` runs it
to the end and lists every problem (dryrun.py prints them), then says what
the install would do.  One list, so a dry run checks what the install
checks, in the same order, with the same messages.

Each check is a small object: a ``name`` (the dry run's label), what it
``needs`` earlier checks to have found, whether it ``applies`` to this
install, and ``run(context)``, which returns a line saying what it found,
or a list of such lines and :class:`Problem` objects, and raises an
EustoreError (or another of dryrun.CHECK_ERRORS) with one line saying what
is wrong and what to do.  A few are for one mode only: what only a dry run
needs to know (a probe object, the store's first byte) and what only an
install does (undoing what a killed run left).

The checks share an :class:`InstallContext`: the options, the ways to reach
the store and the cloud (given by the command), and what earlier checks
found (the cloud, the catalog entry, the plan, the bundling keys...).
"""

from __future__ import absolute_import

import logging
import sys

import six
from six.moves import input

from eustore_plugin.bundle.credentials import (check_key_matches_certificate,
                                               load_certificate,
                                               load_private_key)
from eustore_plugin.cloud.client import ADMIN_ALIAS, check_bucket
from eustore_plugin.cloud.services import CloudError
from eustore_plugin.dryrun import (CHECK_ERRORS, DryRun, bucket_detail,
                                   message_of)
from eustore_plugin.images.layout import image_name_base
from eustore_plugin.install.bundlekeys import BundleCredentials
from eustore_plugin.install.installed import InstalledImage
from eustore_plugin.install.journal import undo_abandoned
from eustore_plugin.install.plan import (BUNDLE_TAGS, SOURCE_TAGS,
                                         InstallError, build_plan, uses_disk)
from eustore_plugin.install.sources import UserTarball
from eustore_plugin.output import warn
from eustore_plugin.store.service import presence_problems
from eustore_plugin.store.urlpolicy import UrlRefused

LOG = logging.getLogger(__name__)


class Problem(object):
    """One problem a check found, among others it goes on to list."""

    def __init__(self, text):
        self.text = six.text_type(text)


class InstallContext(object):
    """
    What the checks of one install share.  Given: the options, the target
    kind (target.py), the store service, and from the command the ways to
    open the cloud, read the catalog, find the bundling keys and ask the
    user a yes/no question.  Found by the checks: the rest.
    """

    def __init__(self, options, kind, store, open_cloud, fetch_catalog,
                 find_bundle_keys, ask=None, dry_run=False):
        self.options = options
        self.kind = kind
        self.store = store
        self.open_cloud = open_cloud
        self.fetch_catalog = fetch_catalog
        self.find_bundle_keys = find_bundle_keys
        self.ask = ask or ask_yes_no
        self.dry_run = dry_run
        self.cloud = None
        self.working = set()  # services whose keys were accepted
        self.credentials = None  # BundleCredentials
        self.catalog = None
        self.image = None  # the catalog's entry; None for -t
        self.plan = None
        self.existing = None  # DescribeImages' answer for an earlier one
        self.reused = None  # ... when it is reused
        self.new_buckets = []  # buckets the install would create

    @property
    def account_id(self):
        return self.credentials.account_id if self.credentials else None

    def found(self, need):
        """Whether what a check needs is there: a service whose keys were
        accepted (or which this cloud does not have), or a fact."""
        if need in ('ec2', 's3', 'iam'):
            return self.cloud is not None and (
                need in self.working or getattr(self.cloud, need) is None or
                not self.dry_run)
        return getattr(self, need) is not None


class Check(object):
    """One check of the list; see the module's docstring."""

    name = None
    needs = ()
    dry_run_only = False
    install_only = False
    quiet = False  # a pass is said by a later check

    def applies(self, context):
        return True

    def label(self, context):
        return self.name

    def run(self, context):
        raise NotImplementedError


class Preflight(object):
    """An ordered list of checks, run in one of two modes."""

    def __init__(self, checks):
        self.checks = list(checks)

    def run(self, context):
        """The install's mode: every check in order; the first problem is
        raised as it is.  Ends early when an installed image is reused."""
        for check in self.checks:
            if check.dry_run_only or not self.ready(check, context):
                continue
            outcomes = check.run(context)
            for outcome in _as_list(outcomes):
                if isinstance(outcome, Problem):
                    raise InstallError(outcome.text)
            if context.reused is not None:
                return

    def dry_run(self, context, report=None):
        """
        The dry run's mode: every check whose needs were found, each
        outcome written down in ``report`` (a DryRun), then what the
        install would do.  Returns the report.
        """
        report = report or DryRun()
        for check in self.checks:
            if check.install_only or not self.ready(check, context):
                continue
            label = check.label(context)
            try:
                outcomes = check.run(context)
            except CHECK_ERRORS as err:
                report.failed(label, message_of(err))
                continue
            for outcome in _as_list(outcomes) or ([] if check.quiet
                                                  else ['']):
                if isinstance(outcome, Problem):
                    report.failed(label, outcome.text)
                else:
                    report.passed(label, outcome)
            if context.reused is not None:
                break
        if context.plan is not None:
            report.add_summary(context.plan.summary())
        fetched = context.credentials and \
            context.credentials.fetched_certificate()
        if fetched:
            report.add_summary({'cloud_certificate': fetched})
        if context.reused is not None:
            report.would(u'Would reuse installed image {0} ({1}), and do '
                         u'nothing else'.format(context.reused.get('imageId'),
                                                context.reused['name']))
        elif context.plan is not None:
            for step in would_do(context):
                report.would(step)
        return report

    @staticmethod
    def ready(check, context):
        """Whether ``check`` is to run: what it needs was found (an install
        gets no further when it was not), and it applies."""
        return all(context.found(need) for need in check.needs) and \
            check.applies(context)


def _as_list(outcomes):
    if outcomes is None:
        return []
    if isinstance(outcomes, (list, tuple)):
        return list(outcomes)
    return [outcomes]


def would_do(context):
    """What the install would do, as a dry run says it."""
    artifact = context.plan.artifact
    if artifact is not None:
        yield u'Would download {0}{1}'.format(
            artifact.location, ' ({0} bytes)'.format(artifact.size)
            if artifact.size is not None else '')
    for step in context.kind.steps(context.plan, context.new_buckets):
        yield step


def install_checks(kind):
    """The install's checks, in order, with those ``kind`` adds."""
    added = kind.checks()
    return Preflight(
        [CloudCheck()] +
        [CredentialsCheck(service) for service in ('ec2', 's3', 'iam')] +
        added.get('credentials', []) +
        [CatalogCheck(), ImageCheck(), ChecksumCheck(), PresenceCheck(),
         PlanCheck()] +
        added.get('plan', []) +
        [HypervisorCheck(), AdminCheck(), AbandonedRunsCheck(),
         ReuseCheck(), NamesCheck()] +
        added.get('target', []))


def ask_yes_no(question):
    """Whether the user at the terminal answers yes to ``question``."""
    return input(question).strip().lower() in ('y', 'yes')


# ------------------------------------------------------------ the cloud

class CloudCheck(Check):
    """The cloud's endpoints and keys are found."""

    name = 'cloud'

    def run(self, context):
        cloud = context.cloud = context.open_cloud()
        return ', '.join(
            '{0} at {1}'.format(service.DESCRIPTION, service.endpoint)
            for service in (cloud.ec2, cloud.s3, cloud.iam)
            if service is not None) + \
            ('' if cloud.iam is not None or 'iam' not in context.kind.services
             else ', no IAM endpoint')


class CredentialsCheck(Check):
    """The keys are accepted by one service: a harmless request to it."""

    name = 'credentials'
    needs = ('cloud',)
    dry_run_only = True

    def __init__(self, service):
        self.service = service

    def applies(self, context):
        return getattr(context.cloud, self.service) is not None

    def run(self, context):
        context.cloud.check_credentials(self.service)
        context.working.add(self.service)
        endpoint = getattr(context.cloud, self.service)
        return 'accepted by {0} at {1}'.format(endpoint.DESCRIPTION,
                                               endpoint.endpoint)


class BundleKeysCheck(Check):
    """
    What bundling needs is found: the user's certificate and key, the
    cloud's certificate (maybe from the bootstrap service) and the account.
    Said by BundlingCheck once loaded.
    """

    name = 'bundling'
    quiet = True

    def run(self, context):
        context.credentials = BundleCredentials(**context.find_bundle_keys())


class BundlingCheck(Check):
    """The bundling keys load, and the user's key and certificate are a
    pair.  (An install finds out as it bundles.)"""

    name = 'bundling'
    needs = ('credentials',)
    dry_run_only = True

    def run(self, context):
        found = context.credentials
        certificate = load_certificate(found.certificate, 'user certificate')
        key = load_private_key(found.private_key)
        check_key_matches_certificate(key, certificate)
        load_certificate(found.cloud_certificate, 'cloud certificate')
        fetched = found.fetched_certificate()
        return ('your certificate and private key are a pair; the cloud\'s '
                'certificate loads{0}; account {1}'.format(
                    ' (from {url}, SHA-256 {fingerprint})'.format(**fetched)
                    if fetched else '', found.account_id))


# ------------------------------------------------------- the store entry

class CatalogCheck(Check):
    """The catalog read, its signature checked by the user's policy."""

    name = 'catalog'

    def applies(self, context):
        return context.options.image_name is not None

    def run(self, context):
        catalog = context.catalog = context.fetch_catalog()
        return 'signed by {0}'.format(catalog.signed_by) \
            if catalog.signed_by else 'not signed'


class ImageCheck(Check):
    """The entry found, with a file to install, and nothing about it that
    the user's policy refuses."""

    name = 'image'
    needs = ('catalog',)

    def run(self, context):
        image = context.catalog.find(
            context.options.image_name,
            architecture=context.options.architecture)
        if not image.location and image.disk is None:
            raise InstallError('the catalog gives no url for image "{0}"'
                               .format(image.name))
        context.image = image
        return [u'{0}{1}'.format(image.name, ' ' + image.version
                                 if image.version else '')] + \
            [Problem(problem) for problem in entry_problems(
                context.store, context.catalog, image)]


def entry_problems(store, catalog, image):
    """What stops ``image`` being installed from ``catalog``, as messages:
    a url the store's policy refuses, a signed catalog without the file's
    strong digest."""
    problems = []
    for location in (image.location, image.disk and image.disk.location):
        if location:
            try:
                store.policy.check(location, u'image "{0}"'.format(
                    image.name))
            except UrlRefused as err:
                problems.append(six.text_type(err))
    unverifiable = [artifact for artifact in (
        image if image.location else None, image.disk)
        if artifact is not None and not (artifact.sha256 or artifact.sha512)]
    if catalog.signed_by and unverifiable:
        # The signature vouches for the catalog; only a strong digest in it
        # carries that over to the tarball.
        problems.append(
            'the signed catalog gives no sha256 for image "{0}", so its '
            'tarball cannot be verified; ask the store\'s operator to '
            'publish it again'.format(image.name))
    return problems


class ChecksumCheck(Check):
    """The catalog gives a digest to check the download by.  (An install
    without one goes on, with a warning once it has downloaded.)"""

    name = 'checksum'
    needs = ('image',)
    dry_run_only = True

    def run(self, context):
        image = context.image
        artifact = installed_file(context)
        checks = [name for name in ('size', 'sha256', 'sha512', 'md5',
                                    'name_checksum')
                  if getattr(artifact, name, None) is not None]
        if not any(name != 'size' for name in checks):
            raise InstallError(
                'the catalog gives no checksum for image "{0}", so its '
                'download could not be verified; ask the store\'s operator '
                'to publish it again'.format(image.name))
        return u'the catalog gives {0}'.format(
            ', '.join(name.replace('_', '-') for name in checks))


class PresenceCheck(Check):
    """The file is on the store, of the size the catalog says (its first
    byte asked for)."""

    name = 'tarball'
    needs = ('image',)
    dry_run_only = True

    def run(self, context):
        artifact = installed_file(context)
        problems = presence_problems(context.store, artifact)
        if problems:
            return [Problem(problem) for problem in problems]
        return u'{0} is there{1}'.format(
            artifact.location, ' ({0} bytes)'.format(artifact.size)
            if artifact.size is not None else '')


def installed_file(context):
    """What of the entry is installed: its tarball (the entry itself) or
    its whole-disk image."""
    image = context.image
    return image.disk if uses_disk(context.options, image) else image


class PlanCheck(Check):
    """The plan made: names, virtualization type (for -t, read from the
    tarball's layout)."""

    name = 'plan'

    def label(self, context):
        return 'plan' if context.options.image_name else 'tarball'

    def applies(self, context):
        return context.image is not None or \
            context.options.image_name is None

    def run(self, context):
        options = context.options
        virt_type = None
        if context.image is None and not options.virtualization_type:
            virt_type = UserTarball(options.tarball).virtualization_type(
                options.hypervisor)
        plan = context.plan = build_plan(
            options, context.image, context.store.endpoint, virt_type)
        return u'{0}: {1}'.format(plan.names['machine'],
                                  plan.virtualization_type or 'paravirtual')


# ------------------------------------------------------- kernels, reuse

class HypervisorCheck(Check):
    """An image with a kernel per hypervisor needs one chosen (-k)."""

    name = 'hypervisor'
    needs = ('plan',)

    def applies(self, context):
        return context.plan.registers_kernels

    def run(self, context):
        image = context.image
        if image is not None and not context.options.hypervisor and \
                image.single_kernel is False and len(image.hypervisors) > 1:
            raise InstallError(
                'image {0} has a kernel for each hypervisor; choose one of: '
                '{1} (-k/--hypervisor)'.format(
                    image.name, ', '.join(sorted(image.hypervisors))))
        return context.plan.hypervisor or 'as the tarball has it'


class AdminCheck(Check):
    """Only the cloud's administrator may register kernels and ramdisks
    (on Eucalyptus, the "eucalyptus" account)."""

    name = 'admin'
    needs = ('plan', 'iam')

    def applies(self, context):
        return context.plan.registers_kernels

    def run(self, context):
        aliases = context.cloud.account_aliases()
        if aliases is None:
            if context.dry_run:
                return ('not checked: no IAM endpoint is known (give '
                        '--iam-url or set EUARE_URL)')
            warn('no IAM endpoint is known, so whether this account may '
                 'register kernels was not checked (give --iam-url or set '
                 'EUARE_URL)')
            return None
        if ADMIN_ALIAS not in aliases:
            raise InstallError(
                'only the cloud administrator ("{0}" account) may register '
                'kernels and ramdisks; ask for the ids of installed ones and '
                'pass them with --kernel and --ramdisk'.format(ADMIN_ALIAS))
        return 'the account may register kernels and ramdisks'


class AbandonedRunsCheck(Check):
    """
    Before the names are checked: what a run killed with -9 left in this
    cloud is not "already installed", nor in the way of running it again,
    so it is undone first.
    """

    name = 'abandoned'
    needs = ('cloud',)
    install_only = True

    def run(self, context):
        undo_abandoned(context.cloud,
                       context.cloud.identity(context.account_id),
                       report=warn)


class ReuseCheck(Check):
    """
    An image installed before from the same store entry and bytes is
    reused (-y, or the user says so), not installed again.
    """

    name = 'reuse'
    needs = ('ec2', 'plan')

    def run(self, context):
        found = find_installed(context.cloud, context.plan, context.image,
                               context.options, context.kind.kind)
        if found is None:
            return 'not installed before (no image is called {0})'.format(
                context.plan.names['machine'])
        context.existing = found
        image_id, name = found.get('imageId'), found['name']
        taken = ('image {0} is already installed as {1}; use -y to reuse '
                 'it, or --pad-name to install another copy'.format(
                     name, image_id))
        if context.options.yes:
            context.reused = found
            return 'image {0} is {1}; -y reuses it'.format(name, image_id)
        if context.dry_run or not sys.stdin.isatty():
            raise InstallError(taken)
        if not context.ask('image {0} is already installed as {1}; reuse '
                           'it? [y/N] '.format(name, image_id)):
            raise InstallError('not reusing {0}; use --pad-name to install '
                               'another copy'.format(image_id))
        context.reused = found
        return None


def find_installed(cloud, plan, image, options, root_device_type):
    """
    DescribeImages' answer for an image installed before from the same
    store entry and bytes, with the same ``root_device_type`` (an
    EBS-backed image is no instance-store one): found by its tags, else by
    the name this install would give it, else by the name earlier versions
    gave it (eustore-<tarball name>); None if there is none, or
    --pad-name.
    """
    if options.pad_name:
        return None
    found = []
    identity = dict((key, plan.tags[key]) for key in (
        SOURCE_TAGS['store'], SOURCE_TAGS['image'], SOURCE_TAGS['checksum'])
        if key in plan.tags)
    if len(identity) == 3:
        try:
            found = list(cloud.images_tagged(
                dict(identity, **{BUNDLE_TAGS['role']: 'machine'})))
        except CloudError as err:  # a cloud without tag filters
            LOG.debug('looking images up by tags failed (%s)', err)
    found = _of_kind(found, root_device_type)
    names = [plan.names['machine']]
    if image is not None and not options.prefix and not plan.ebs:
        names.append(image_name_base(image.location or image.disk.location))
    for name in names:
        if found:
            break
        found = _of_kind(cloud.images_named(name), root_device_type)
    if not found:
        return None
    found[0].setdefault('name', plan.names['machine'])
    return found[0]


def _of_kind(described, root_device_type):
    """The images of ``described`` (DescribeImages' items) with that root
    device type, as the cloud or the tags install wrote say it (an image
    neither tells of is taken for an instance-store one, as all were
    before EBS-backed installs)."""
    return [item for item in described
            if (InstalledImage(item).root_device_type or 'instance-store')
            == root_device_type]


class NamesCheck(Check):
    """
    Before anything is uploaded: no image has a name this install
    registers, and nothing the target would write is there already.  What
    the run creates is then its own, by name as well as by id.
    """

    name = 'names'
    needs = ('ec2', 's3', 'plan')

    def applies(self, context):
        return context.existing is None  # (a reused image's are its own)

    def run(self, context):
        plan = context.plan
        problems = [Problem(problem) for problem in
                    name_collisions(context.cloud, plan)]
        problems.extend(Problem(problem) for problem in
                        context.kind.collisions(context.cloud, plan))
        return problems or 'free: {0}'.format(', '.join(
            plan.names[role] for role in plan.registered_roles))


def name_collisions(cloud, plan):
    """Images already registered under the names of ``plan``, as
    messages (the machine image's name is the reuse check's)."""
    for role in plan.registered_roles:
        if role == 'machine':
            continue
        taken = cloud.images_named(plan.names[role])
        if taken:
            yield ('an image named {0} is already registered ({1}); use '
                   '--pad-name or -p to install under other names, or '
                   '--kernel and --ramdisk to use installed ones'.format(
                       plan.names[role], taken[0].get('imageId')))


class BucketCheck(Check):
    """Each bucket takes what the install writes: an existing one a probe
    object (put and deleted: a dry run's one write), a missing one may be
    created."""

    name = 'bucket'
    needs = ('s3', 'plan')
    dry_run_only = True

    def run(self, context):
        plan = context.plan
        outcomes = []
        for bucket in sorted(set(plan.bucket_for(role)
                                 for role in plan.registered_roles)):
            try:
                exists = check_bucket(context.cloud, bucket, plan.key_prefix,
                                      acl=context.kind.acl)
            except CHECK_ERRORS as err:
                outcomes.append(Problem(message_of(err)))
                continue
            if not exists:
                context.new_buckets.append(bucket)
            outcomes.append(bucket_detail(exists, bucket, plan.key_prefix))
        return outcomes
