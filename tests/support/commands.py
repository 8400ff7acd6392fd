# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Running the eustore commands as a user does: the installed console script,
in a process of its own, in an environment holding only what a user's shell
would (no eucarc unless one is given); and other programs the tests run
(:func:`run_tool`).
"""

from __future__ import absolute_import

import os
import os.path
import subprocess
import sys

# Each command and the class its console script runs (setup.py's entry
# points), for a checkout that has no scripts installed.
COMMANDS = {
    'eustore-describe-images':
        'eustore_plugin.commands.describeimages:DescribeImages',
    'eustore-install-image':
        'eustore_plugin.commands.installimage:InstallImage',
    'eustore-publish-image':
        'eustore_plugin.commands.publishimage:PublishImage',
    'eustore-withdraw-image':
        'eustore_plugin.commands.withdrawimage:WithdrawImage',
    'eustore-check-store':
        'eustore_plugin.commands.checkstore:CheckStore',
    'eustore-describe-installed':
        'eustore_plugin.commands.describeinstalled:DescribeInstalled',
    'eustore-uninstall-image':
        'eustore_plugin.commands.uninstallimage:UninstallImage',
}

# Variables a user's shell may carry that would leak into a run.
USER_VARIABLES = ('EUSTORE_URL', 'EUCA_CONFIG_PATH', 'EC2_URL', 'S3_URL',
                  'EUARE_URL', 'AWS_IAM_URL', 'TOKEN_URL', 'EC2_ACCESS_KEY',
                  'EC2_SECRET_KEY', 'AWS_ACCESS_KEY', 'AWS_SECRET_KEY',
                  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
                  'AWS_SECURITY_TOKEN', 'AWS_CREDENTIAL_FILE', 'EC2_CERT',
                  'EC2_PRIVATE_KEY', 'EUCALYPTUS_CERT', 'EC2_USER_ID',
                  'EUCA_BOOTSTRAP_URL', 'EUCA_DEFAULT_REGION',
                  'AWS_DEFAULT_REGION',
                  'AWS_AUTH_REGION', 'REQUESTS_CA_BUNDLE', 'http_proxy',
                  'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY',
                  'XDG_CACHE_HOME', 'XDG_STATE_HOME', 'GNUPGHOME')

# The warning every unsigned store gets, for runs about something else.
UNSIGNED_WARNING_END = ('is not signed, so the images it lists cannot be '
                        'verified')


def clean_env(home, **extra):
    """
    A user's environment with no eucarc, ``home`` as HOME and no euca2ools
    configuration (``EUCA_CONFIG_PATH`` names nothing), plus ``extra``.
    """
    env = dict((key, val) for key, val in os.environ.items()
               if key not in USER_VARIABLES)
    env['HOME'] = home
    env['EUCA_CONFIG_PATH'] = os.path.join(home, 'no-config', '*.ini')
    env['NO_PROXY'] = env['no_proxy'] = '127.0.0.1,localhost'
    env['PYTHONIOENCODING'] = 'utf-8'
    env.update(extra)
    return env


def installed_script(command):
    """The console script pip installed beside this Python, or None."""
    script = os.path.join(os.path.dirname(os.path.abspath(sys.executable)),
                          command)
    return script if os.path.isfile(script) else None


def command_argv(command, python=None):
    """
    How to start ``command``: its installed console script, or (in a
    checkout with no scripts) this Python running the same class.  With
    ``EUSTORE_TEST_INSTALLED`` set the script must be there: the tests are
    then proving the installed package, entry points included.

    With ``EUSTORE_TEST_MODULES`` set (and ``EUSTORE_TEST_INSTALLED`` not),
    the class is always run with ``sys.executable -c``, from whatever
    ``import eustore_plugin`` finds: a worktree's tests use the worktree's
    code even when the venv's console scripts belong to an editable install
    of another checkout (run them with ``PYTHONPATH`` naming the worktree).
    With ``python`` (another interpreter: the benchmarks' 2.7) the class is
    run by that one.
    """
    script = None if python else installed_script(command)
    if os.environ.get('EUSTORE_TEST_MODULES') and \
            not os.environ.get('EUSTORE_TEST_INSTALLED'):
        script = None
    if script:
        return [script]
    if os.environ.get('EUSTORE_TEST_INSTALLED'):
        raise RuntimeError('{0} is not installed beside {1}'.format(
            command, sys.executable))
    module, cls = COMMANDS[command].split(':')
    code = ('import sys; sys.argv[0] = {0!r}; from {1} import {2}; '
            'sys.exit({2}.run())'.format(command, module, cls))
    return [python or sys.executable, '-c', code]


class Result(object):
    """What a command did: exit status, and its output as text."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def lines(self):
        return self.stdout.splitlines()

    @property
    def messages(self):
        """The stderr lines, less the warning every unsigned store gets."""
        return [line for line in self.stderr.splitlines()
                if not line.endswith(UNSIGNED_WARNING_END)]

    def __repr__(self):
        return 'Result(rc={0}, stdout={1!r}, stderr={2!r})'.format(
            self.returncode, self.stdout, self.stderr)


def start_command(command, args, env, **popen_args):
    """The command running in a child process (pipes unless told)."""
    for stream in ('stdin', 'stdout', 'stderr'):
        popen_args.setdefault(stream, subprocess.PIPE)
    return subprocess.Popen(command_argv(command) + list(args), env=env,
                            **popen_args)


def run_tool(args, stdin=None, cwd=None):
    """Run another program to its end; its stdout, or an AssertionError
    naming it, with its stderr."""
    process = subprocess.Popen(args, stdin=subprocess.PIPE if stdin is not
                               None else None, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=cwd)
    out, err = process.communicate(stdin)
    if process.returncode != 0:
        raise AssertionError('{0} failed ({1}): {2}'.format(
            ' '.join(args), process.returncode, err.decode('utf-8',
                                                           'replace')))
    return out


def run_command(command, args, env, input=b'', cwd=None):
    """Run a command to its end; returns a :class:`Result`."""
    return finish_command(start_command(command, args, env, cwd=cwd), input)


def finish_command(proc, input=b''):
    """The :class:`Result` of a command started with start_command, once
    it has ended."""
    out, err = proc.communicate(input)
    return Result(proc.returncode, out.decode('utf-8'), err.decode('utf-8'))


GNU_TIME = '/usr/bin/time'


class Measured(Result):
    """A :class:`Result` with the CPU seconds (user and system) and the
    peak RSS in bytes of the command's process, as GNU time says them."""

    def __init__(self, returncode, stdout, stderr, cpu, maxrss):
        Result.__init__(self, returncode, stdout, stderr)
        self.cpu = cpu
        self.maxrss = maxrss

    def __repr__(self):
        return 'Measured(rc={0}, cpu={1:.2f}, maxrss={2}, stderr={3!r})' \
            .format(self.returncode, self.cpu, self.maxrss, self.stderr)


def run_measured(command, args, env, report):
    """
    Run a command to its end under GNU time (``report``: a file path for
    its figures), as a user measuring it would: a :class:`Measured`.  The
    command is GNU time's own child, forked from that small process, so
    its peak RSS is its own (not this test process's, which a child forked
    from it starts with).
    """
    proc = subprocess.Popen(
        [GNU_TIME, '-q', '-f', '%U %S %M', '-o', report] +
        command_argv(command) + list(args), env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(b'')
    with open(report) as figures:
        user, system, maxrss_kib = figures.read().split()[-3:]
    return Measured(proc.returncode, out.decode('utf-8'),
                    err.decode('utf-8'), float(user) + float(system),
                    int(maxrss_kib) * 1024)
