# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Bash completion through argcomplete, spoken to by its own protocol as the
hook ``register-python-argcomplete`` installs does: the command run with
_ARGCOMPLETE=1, the line typed so far in COMP_LINE and the cursor in
COMP_POINT, the completions read from file descriptor 8.
"""

from __future__ import absolute_import

import subprocess

import pytest

from tests.support.commands import COMMANDS, command_argv

try:
    import argcomplete  # noqa: F401 (what the commands complete with)
except ImportError:
    pytest.skip('argcomplete is not installed here (pip install '
                '"eustore-plugin[completion]")', allow_module_level=True)


def complete(command, typed, env):
    """What completing ``typed`` (the line so far) offers."""
    line = command + ' ' + typed
    env = dict(env, _ARGCOMPLETE='1', _ARGCOMPLETE_IFS='\n',
               COMP_LINE=line, COMP_POINT=str(len(line)), COMP_TYPE='9')
    # fd 8 is the pipe read here; the command's own output goes nowhere.
    proc = subprocess.Popen(
        ['sh', '-c', 'exec "$@" 8>&1 >/dev/null 2>/dev/null', 'sh'] +
        command_argv(command), env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = proc.communicate(b'')
    assert proc.returncode == 0, (command, typed, out)
    return sorted(word.strip() for word in out.decode('utf-8').split('\n')
                  if word.strip())


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_options_complete(command, user_env):
    offered = complete(command, '--', user_env)
    assert '--help' in offered and '--region' in offered
    assert complete(command, '--reg', user_env) == ['--region']


@pytest.mark.parametrize('command, typed, wanted', [
    ('eustore-install-image', '--dry', '--dry-run'),
    ('eustore-install-image', '--js', '--json'),
    ('eustore-publish-image', '--sign', '--sign-key'),
    ('eustore-withdraw-image', '--dry', '--dry-run'),
    ('eustore-check-store', '--qu', '--quick'),
])
def test_the_commands_own_options_complete(command, typed, wanted,
                                           user_env):
    assert complete(command, typed, user_env) == [wanted]


def test_choices_complete(user_env):
    assert complete('eustore-install-image', '-k ', user_env) == [
        'kvm', 'universal', 'xen']


def test_without_the_protocol_the_command_runs_as_usual(cli):
    result = cli('eustore-check-store', '--help')
    assert result.returncode == 0
    assert '--quick' in result.stdout
