# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

from __future__ import absolute_import

import sys

from requestbuilder import Arg
from six.moves import input

from eustore_plugin.cloud.client import ADMIN_ALIAS
from eustore_plugin.commands.base import CloudRequest
from eustore_plugin.install.uninstaller import (UninstallError, plan_uninstall,
                                                remove)
from eustore_plugin.output import emit, warn


class UninstallImage(CloudRequest):
    DESCRIPTION = '''\
        Remove an image installed from an image store from your cloud.

        The machine image is deregistered, then its kernel and ramdisk
        when no other image the cloud shows boots with them and your
        account may deregister kernels, then the objects of each
        deregistered image's bundle: its manifest and the parts the
        manifest names, nothing else; of an EBS-backed image, the snapshot
        it boots from, unless another of your images boots from it.  Only
        what eustore-install-image installed from a store is removed (the
        images that eustore-describe-installed lists).  What will be
        removed is shown first and, on a terminal, you are asked to
        confirm.'''
    ARGS = [Arg('image', metavar='IMAGE', route_to=None, help='''ID or name
                of the machine image to remove'''),
            Arg('-y', '--yes', action='store_true', route_to=None,
                help='remove without asking'),
            Arg('--dry-run', action='store_true', route_to=None,
                help='''only show what would be removed, and remove
                nothing''')]

    def main(self):
        # S3 only for a bundle: an EBS-backed image is EC2's alone.
        cloud = self.open_cloud(s3_optional=True)
        plan = plan_uninstall(cloud, self.args['image'],
                              lambda: self.kernel_refusal(cloud))
        dry_run = self.args.get('dry_run')
        confirm = not (dry_run or self.args.get('yes'))
        if confirm and not sys.stdin.isatty():
            raise UninstallError(
                u'not removing {0} unasked: standard input is not a terminal; '
                'use -y to remove it, or --dry-run to see what would be '
                'removed'.format(plan.target.label()))
        if dry_run or confirm:
            for step in plan.steps:
                emit(u'Will {0} {1}'.format(step.VERB, step.describe()))
        self.print_kept(plan)
        if dry_run:
            emit(u'Dry run: nothing was removed')
            return None
        if confirm:
            self.ask(plan)
        remove(plan, cloud, self.print_step)
        return plan

    def print_result(self, plan):
        if plan is not None:
            emit(u'Uninstalled image {0}'.format(plan.target.label()))

    # ------------------------------------------------------------------

    @staticmethod
    def kernel_refusal(cloud):
        """Why the account may not deregister kernels, or None."""
        aliases = cloud.account_aliases()
        if aliases is None:
            warn('no IAM endpoint is known, so whether this account may '
                 'deregister kernels was not checked (give --iam-url or set '
                 'EUARE_URL)')
            return None
        if ADMIN_ALIAS not in aliases:
            return ('only the cloud administrator ("{0}" account) may '
                    'deregister kernels and ramdisks'.format(ADMIN_ALIAS))
        return None

    @staticmethod
    def print_kept(plan):
        for role, _, label, reason in plan.kept:
            emit(u'Keeping {0} {1}: {2}'.format(role, label, reason))
        for note in plan.notes:
            emit(u'Note: {0}'.format(note))

    @staticmethod
    def ask(plan):
        counts = [(len(plan.images), 'image')]
        if plan.snapshots:
            counts.append((len(plan.snapshots), 'snapshot'))
        counts.append((len(plan.objects), 'object'))
        said = [u'{0} {1}{2}'.format(count, what, '' if count == 1 else 's')
                for count, what in counts]
        question = u'Remove {0} and {1}? [y/N] '.format(
            ', '.join(said[:-1]), said[-1])
        try:
            answer = input(question)
        except EOFError:
            answer = ''
        if answer.strip().lower() not in ('y', 'yes'):
            raise UninstallError('not confirmed; nothing was removed')

    @staticmethod
    def print_step(step):
        emit(u'{0} {1}'.format(step.DONE, step.describe()))
        sys.stdout.flush()
