# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The test matrix: what users get, on every Python this machine has.

The package is built once (wheel and sdist, as PyPI would get them) and
installed, non-editable, into a fresh virtual environment per Python; the
tests run from a copy of tests/ outside the checkout, so ``import
eustore_plugin`` can only find the installed copy (conftest.py checks), and
commands run through the installed console scripts.  A fresh environment
matters: this machine's interpreters import extra modules at start-up that
users' do not, and hid an import error once.

- ``full``: the whole suite, on the Python 3 nox itself runs on and on 2.7
  (from the sdist there, so both artefacts are proven);
- ``euca2ools``: the 2.7 suite again with euca2ools importable, when
  EUCA2OOLS_SRC names a euca2ools source tree;
- ``rgw``: the tests of what stores and installs do in S3 (publish,
  withdraw, check-store, install, uninstall, describe-installed, listings,
  signing) again with Ceph RGW as the S3 (tests/support/rgw.py starts a
  one-node cluster; EC2 stays moto's), on nox's Python 3; where RGW cannot
  start the leg fails, saying why;
- ``smoke``: on every other Python found among 3.8-3.13, the tests marked
  ``smoke`` (the five commands start, a local catalog lists, an image
  installs into moto);
- ``lint``: flake8, configured in setup.cfg.

Run by scripts/test; ``summary`` prints what ran where, and why anything
did not.  nox rather than tox: the matrix is decided at run time (which
Pythons exist, whether euca2ools is given) and reported as a table, which
is plain Python in a noxfile and contortions in tox.ini.
"""

from __future__ import print_function

import glob
import json
import os
import os.path
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

import nox

ROOT = os.path.dirname(os.path.abspath(__file__))
DIST = os.path.join(ROOT, '.nox', 'dist')
RESULTS = os.path.join(ROOT, '.nox', 'results')
SUPPORTED = ('2.7', '3.8', '3.9', '3.10', '3.11', '3.12', '3.13')
PY3 = '{0}.{1}'.format(*sys.version_info[:2])
# What the tests need besides the package, per Python: the last releases
# that still support 2.7 there.
TEST_DEPENDENCIES = {
    '2.7': ['pytest<5', 'requests<2.28', 'cryptography<3.4',
            'botocore<1.21', 'six'],
    '3': ['pytest', 'botocore', 'argcomplete'],
}
# euca2ools' own dependencies (it is on no registry, so pip cannot know).
EUCA2OOLS_DEPENDENCIES = ['lxml<5', 'PyYAML<6']

nox.options.download_python = 'never'
nox.options.error_on_missing_interpreters = False


def find_python(version):
    """
    An interpreter of ``version``: $PYTHON2 for 2.7, pyenv's newest
    ``version.*``, else ``pythonX.Y`` on PATH if it runs (pyenv's shims
    are on PATH but refuse to run for versions not selected).
    """
    if version == '2.7' and os.environ.get('PYTHON2'):
        return os.environ['PYTHON2']
    if version == PY3:
        return sys.executable
    root = os.environ.get('PYENV_ROOT') or os.path.expanduser('~/.pyenv')
    found = glob.glob(os.path.join(root, 'versions', version + '.*', 'bin',
                                   'python' + version))
    found = [path for path in found
             if re.match(r'^\d+$', path.split(os.sep)[-3].split('.')[-1])]
    found.sort(key=lambda path: int(path.split(os.sep)[-3].split('.')[-1]))
    candidates = found[::-1] + [shutil.which('python' + version)]
    for candidate in candidates:
        if candidate and subprocess.call(
                [candidate, '-c', ''], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) == 0:
            return candidate
    return None


PYTHONS = dict((version, find_python(version)) for version in SUPPORTED)
SMOKE_VERSIONS = [version for version in SUPPORTED
                  if version not in (PY3, '2.7')]
LEGS = (['build', 'lint', 'full-3', 'full-2.7', 'euca2ools-2.7', 'rgw-3'] +
        ['smoke-' + version for version in SMOKE_VERSIONS])
# What the rgw leg runs: the modules whose tests keep images in S3.
RGW_TESTS = ['tests/test_cloud.py', 'tests/test_signing.py',
             'tests/test_publish.py', 'tests/test_publish_dryrun.py',
             'tests/test_install.py', 'tests/test_installed.py',
             'tests/test_dryrun.py', 'tests/test_journal.py']
nox.options.sessions = LEGS + ['summary']


def record(name, python, status, detail='', junit=None):
    """Write down a leg's outcome for ``summary``."""
    if not os.path.isdir(RESULTS):
        os.makedirs(RESULTS)
    counts = junit_counts(junit) if junit else None
    with open(os.path.join(RESULTS, name + '.json'), 'w') as out:
        json.dump({'leg': name, 'python': python, 'status': status,
                   'detail': detail, 'counts': counts}, out)


def junit_counts(path):
    try:
        suites = ElementTree.parse(path).getroot()
    except (IOError, OSError, ElementTree.ParseError):
        return None
    totals = dict.fromkeys(('tests', 'failures', 'errors', 'skipped'), 0)
    for suite in suites.iter('testsuite'):
        for key in totals:
            totals[key] += int(suite.get(key) or 0)
    totals['passed'] = (totals['tests'] - totals['failures'] -
                        totals['errors'] - totals['skipped'])
    return totals


def artefact(kind):
    pattern = '*.whl' if kind == 'wheel' else '*.tar.gz'
    found = sorted(glob.glob(os.path.join(DIST, pattern)))
    if not found:
        raise RuntimeError('no {0} in {1}: run the "build" session first'
                           .format(kind, DIST))
    return found[-1]


def run_tests(session, leg, version, selection=(), artefact_kind='wheel',
              extra_pythonpath=None, extra_dependencies=(), extra_env=None,
              notes=lambda: ''):
    """Install the package into the session's fresh venv; test it there.
    ``notes()`` is what the table says of the leg, when it has a word."""
    python = PYTHONS[version]
    label = '{0} {1}'.format(version, python)
    junit = os.path.join(RESULTS, leg + '.xml')
    try:
        deps = TEST_DEPENDENCIES['2.7' if version == '2.7' else '3'] + \
            list(extra_dependencies)
        session.install(artefact(artefact_kind), *deps)
        # Outside the checkout, so that only the installed package imports.
        workdir = session.create_tmp()
        copy = os.path.join(workdir, 'tests')
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(os.path.join(ROOT, 'tests'), copy, ignore=(
            shutil.ignore_patterns('__pycache__', '*.pyc')))
        session.chdir(workdir)
        env = {'EUSTORE_TEST_INSTALLED': ROOT, 'EUSTORE_CHECKOUT': ROOT,
               'MOTO_SERVER': moto_server(), 'PYTHONDONTWRITEBYTECODE': '1'}
        if extra_pythonpath:
            env['PYTHONPATH'] = extra_pythonpath
        env.update(extra_env or {})
        session.run('python', '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                    '--junitxml', junit,
                    *((list(selection) or ['tests']) + session.posargs),
                    env=env)
    except BaseException as err:
        record(leg, label, 'FAILED', notes() or (str(err).splitlines()[0]
               if str(err) else type(err).__name__), junit)
        raise
    record(leg, label, 'passed', notes(), junit=junit)


def moto_server():
    """moto_server beside nox (moto runs on Python 3 only)."""
    found = os.environ.get('MOTO_SERVER') or shutil.which(
        'moto_server', path=os.path.dirname(sys.executable)) or \
        shutil.which('moto_server')
    return found or ''


def skip(session, leg, version, reason):
    record(leg, version, 'skipped', reason)
    session.skip(reason)


@nox.session(python=False)
def lint(session):
    """flake8 over the whole tree (setup.cfg configures it)."""
    try:
        session.run(sys.executable, '-m', 'flake8', external=True)
    except BaseException:
        record('lint', PY3, 'FAILED', 'flake8 found problems (above)')
        raise
    record('lint', PY3, 'passed')


@nox.session(python=False)
def build(session):
    """The wheel and the sdist, from a clean state."""
    shutil.rmtree(DIST, ignore_errors=True)
    shutil.rmtree(RESULTS, ignore_errors=True)
    session.run(sys.executable, '-m', 'build', '--outdir', DIST, ROOT,
                external=True, silent=True)
    record('build', PY3, 'passed', ', '.join(
        os.path.basename(path) for path in sorted(os.listdir(DIST))))


def _leg(name, version, unavailable=None, side='3'):
    """
    Make a function the session ``name`` on ``version``'s interpreter; when
    there is none, or ``unavailable`` says why the leg cannot run, a session
    with no venv that records why (nox alone would skip it without a word
    in the summary).  Python 2.7 venvs come from virtualenv<20.22, the last
    that makes them; 3.x ones from the interpreter's own venv module, whose
    pip fits it.  ``side`` ('3' or '2.7') is the tag scripts/test runs the
    legs by, the two sides side by side.
    """
    python = PYTHONS[version]
    reason = unavailable or (None if python else
                             'no Python {0} found'.format(version))

    tags = ['side-' + side]

    def decorate(function):
        if reason:
            def unavailable_leg(session):
                skip(session, name, version, reason)
            unavailable_leg.__doc__ = function.__doc__
            return nox.session(name=name, python=False,
                               tags=tags)(unavailable_leg)
        return nox.session(name=name, python=python, tags=tags, venv_backend=(
            'virtualenv' if version == '2.7' else 'venv'))(function)
    return decorate


@_leg('full-3', PY3)
def full_3(session):
    """The whole suite on nox's own Python 3, from the wheel."""
    run_tests(session, 'full-3', PY3)


@_leg('full-2.7', '2.7', side='2.7')
def full_2_7(session):
    """The whole suite on Python 2.7, from the sdist."""
    run_tests(session, 'full-2.7', '2.7', artefact_kind='sdist')


EUCA2OOLS_SRC = os.environ.get('EUCA2OOLS_SRC')


@_leg('euca2ools-2.7', '2.7', unavailable=None if EUCA2OOLS_SRC else (
    'EUCA2OOLS_SRC is not set (point it at a euca2ools 3.4 source tree)'),
    side='2.7')
def euca2ools_2_7(session):
    """The 2.7 suite with euca2ools importable from EUCA2OOLS_SRC."""
    run_tests(session, 'euca2ools-2.7', '2.7',
              extra_pythonpath=os.path.abspath(EUCA2OOLS_SRC),
              extra_dependencies=EUCA2OOLS_DEPENDENCIES)


@_leg('rgw-3', PY3, side='2.7')
def rgw_3(session):
    """The S3 side of the suite on Ceph RGW, EC2 on moto, from the wheel.
    Beside the 2.7 side (see scripts/test), which leaves a core idle."""
    report = os.path.join(RESULTS, 'rgw-3.start.json')
    if os.path.exists(report):
        os.remove(report)
    began = time.time()

    def notes():
        """How RGW started (or why it did not), and the leg's time."""
        try:
            with open(report) as data:
                start = json.load(data)
        except (IOError, OSError, ValueError):
            return ''
        if start.get('error'):
            return start['error']
        return 'radosgw {0} up in {1:.1f} s; the leg took {2:.0f} s'.format(
            start['version'], start['started_in'], time.time() - began)
    run_tests(session, 'rgw-3', PY3, RGW_TESTS, extra_env={
        'EUSTORE_TEST_S3': 'rgw', 'EUSTORE_TEST_RGW_REPORT': report},
        notes=notes)


def _smoke_leg(version, side):
    leg = 'smoke-' + version

    @_leg(leg, version, side=side)
    def smoke(session):
        """The tests marked smoke, from the wheel."""
        run_tests(session, leg, version, ['-m', 'smoke', 'tests'])


# Half the smoke legs beside the 2.7 ones, which take longer alone.
for _number, _version in enumerate(SMOKE_VERSIONS):
    _smoke_leg(_version, '2.7' if _number % 2 else '3')


@nox.session(python=False)
def summary(session):
    """What ran on which Python, and what did not and why; fails if any
    leg failed.  ``nox -s summary -- all`` (scripts/test's whole run) also
    fails for a leg that never reported; otherwise (legs chosen with -s)
    such a leg was not run this time."""
    every_leg = 'all' in session.posargs
    rows, bad = [], False
    for leg in LEGS:
        try:
            with open(os.path.join(RESULTS, leg + '.json')) as data:
                result = json.load(data)
        except (IOError, OSError, ValueError):
            result = {'leg': leg, 'python': '',
                      'status': 'FAILED' if every_leg else 'not run',
                      'detail': 'did not run to its end' if every_leg else
                      'not chosen this time (nox -s)', 'counts': None}
        counts = result['counts']
        tests = '' if not counts else \
            '{passed} passed, {skipped} skipped, {failed} failed'.format(
                failed=counts['failures'] + counts['errors'], **counts)
        bad = bad or result['status'] == 'FAILED'
        rows.append((leg, result['python'] or '-', result['status'], tests,
                     result['detail']))
    widths = [max(len(row[column]) for row in rows + [
        ('leg', 'python', 'status', 'tests', 'notes')]) for column in range(5)]
    print()
    for row in [('leg', 'python', 'status', 'tests', 'notes')] + rows:
        print('  '.join(cell.ljust(width)
                        for cell, width in zip(row, widths)).rstrip())
    if bad:
        session.error('some legs failed (see above)')
