# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What ``--dry-run`` shares between the commands that move images (install,
publish, withdraw): every check that moves no image is run, its outcome
written down rather than raised, so that one run lists every problem; then
what the command would have done.

Printed as check-store prints a store's images: one tab-separated line a
check (``OK``, the check, what was found; ``FAILED``, the check, the
problem), then one ``Would ...`` line a step; with --json, one object.  The
exit status is 1, with one line on stderr, when any check failed.
"""

from __future__ import absolute_import

import collections
import json

from requestbuilder.exceptions import ArgumentError, ClientError, ServerError
import six

from eustore_plugin.output import emit, emit_raw, tsv_line

# What a check may raise that is a problem to list, not a bug.
CHECK_ERRORS = (ClientError, ServerError, ArgumentError, ValueError,
                EnvironmentError)


class DryRunFailed(ClientError):
    """Some check of a dry run failed (they are listed on stdout)."""


def message_of(err):
    """An exception's one-line message."""
    text = err.args[0] if err.args and err.args[0] else \
        (six.text_type(err) or type(err).__name__)
    return u' '.join(six.text_type(text).split())


class DryRun(object):
    """The checks of one dry run, and the steps it would have taken."""

    def __init__(self):
        self.checks = []  # OrderedDicts: check, ok, detail or problem
        self.steps = []
        self.plan = collections.OrderedDict()  # what --json adds

    def passed(self, check, detail=''):
        self.checks.append(collections.OrderedDict([
            ('check', check), ('ok', True), ('detail', detail or '')]))

    def failed(self, check, problem):
        self.checks.append(collections.OrderedDict([
            ('check', check), ('ok', False), ('problem', problem)]))

    def attempt(self, check, function, *args, **kwargs):
        """
        ``function(*args, **kwargs)``, its result written down as passed
        and returned; None when it raised a problem, which is written down.
        ``detail(result)``, if given, says what was found, or raises the
        problem a result is (a lock held, say).  With ``quiet``, only a
        problem is written down (what passed is told by a later check).
        """
        detail = kwargs.pop('detail', None)
        quiet = kwargs.pop('quiet', False)
        try:
            result = function(*args, **kwargs)
            text = detail(result) if detail else \
                (result if isinstance(result, six.string_types) else '')
        except CHECK_ERRORS as err:
            self.failed(check, message_of(err))
            return None
        if not quiet:
            self.passed(check, text)
        return result

    def would(self, step):
        self.steps.append(step)

    def add_summary(self, summary):
        """What --json adds: the names, bucket, ... the command would use."""
        self.plan.update(summary)

    @property
    def problems(self):
        return [check['problem'] for check in self.checks
                if not check['ok']]

    def to_dict(self):
        result = collections.OrderedDict([
            ('dry_run', True), ('ok', not self.problems),
            ('checks', self.checks), ('problems', self.problems),
            ('would', self.steps)])
        result.update(self.plan)
        return result

    def report(self, as_json=False):
        """Print the checks and the steps; raise DryRunFailed if any check
        failed."""
        if as_json:
            emit_raw(json.dumps(self.to_dict(), indent=2, sort_keys=True,
                                ensure_ascii=True))
        else:
            for check in self.checks:
                emit(tsv_line(['OK', check['check'], check['detail']]
                              if check['ok'] else
                              ['FAILED', check['check'], check['problem']]),
                     tabs=True)
            for step in self.steps:
                emit(step)
        problems = self.problems
        if problems:
            raise DryRunFailed(
                'the dry run found {0} problem{1} (listed above); nothing '
                'was changed'.format(len(problems),
                                     '' if len(problems) == 1 else 's'))


def bucket_detail(exists, bucket, key_prefix=''):
    if exists:
        return u'{0}: writable (a probe object was put under "{1}" and ' \
            u'deleted)'.format(bucket, key_prefix)
    return u'{0}: does not exist yet, and may be created'.format(bucket)
