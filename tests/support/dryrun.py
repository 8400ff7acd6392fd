# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Reading a --dry-run's output: its checks, their failures, its steps."""

from __future__ import absolute_import


def checks(result):
    """{check: [(status, text), ...]} of a dry run's output."""
    found = {}
    for line in result.lines:
        if line.startswith(('OK\t', 'FAILED\t')):
            status, check, text = line.split('\t', 2)
            found.setdefault(check, []).append((status, text))
    return found


def failed(result):
    """(check, problem) of every failed check."""
    return [(check, text) for check, outcomes in checks(result).items()
            for status, text in outcomes if status == 'FAILED']


def steps(result):
    return [line for line in result.lines if line.startswith('Would ')]


def assert_problems(result, expected):
    """The run failed with exactly the problems ``expected`` ({check:
    fragment}); returns them."""
    assert result.returncode == 1, result
    problems = failed(result)
    assert sorted(check for check, _ in problems) == sorted(expected), result
    for check, fragment in expected.items():
        assert any(fragment in text for name, text in problems
                   if name == check), (check, fragment, problems)
    return problems
