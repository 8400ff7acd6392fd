# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Man pages: complete against --help, and clean under groff and man."""

from __future__ import absolute_import

import os.path
import re
import subprocess

import pytest

from tests.support.commands import COMMANDS
from tests.support.paths import man_dir

MAN_DIR = man_dir()
PAGES = sorted(name[:-2] for name in os.listdir(MAN_DIR)
               if name.endswith('.1'))
# Every command's page is checked, so that a command without one fails its
# own tests rather than going unchecked.
ALL_COMMANDS = sorted(COMMANDS)


def page_path(command):
    return os.path.join(MAN_DIR, command + '.1')


def man_source_text(command):
    """The page's source with roff escapes for dashes and fonts undone."""
    with open(page_path(command)) as page:
        text = page.read()
    text = re.sub(r'\\f[BIRP]', '', text)
    return text.replace('\\-', '-').replace('\\&', '')


def help_options(cli, command):
    result = cli(command, '--help')
    assert result.returncode == 0, result
    # Option strings are the words starting with "-" in the options listing.
    listing = result.stdout.split('options:', 1)[-1]
    return sorted(set(re.findall(r'(?<![\w-])(--?[A-Za-z][\w-]*)', listing)))


def test_every_command_has_a_page_and_no_page_lacks_a_command():
    assert PAGES == ALL_COMMANDS


@pytest.mark.parametrize('command', ALL_COMMANDS)
def test_pages_refer_to_each_other_and_to_no_missing_page(command):
    source = man_source_text(command)
    named = set(re.findall(r'^\.BR (eustore-[a-z-]+) \(1\)', source, re.M))
    assert named, 'no SEE ALSO references'
    assert sorted(named - set(PAGES)) == []
    # Each page points to the others of the suite.
    assert sorted(set(PAGES) - named - set([command])) == []


@pytest.mark.parametrize('command', ALL_COMMANDS)
def test_every_help_option_is_documented(cli, command):
    options = help_options(cli, command)
    assert '--help' in options and '-h' in options  # the parse worked
    source = man_source_text(command)
    missing = [option for option in options
               if not re.search(r'(?<![\w-])' + re.escape(option) +
                                r'(?![\w-])', source)]
    assert missing == []


@pytest.mark.parametrize('command', ALL_COMMANDS)
def test_groff_reports_no_warnings(command):
    proc = subprocess.Popen(['groff', '-man', '-ww', '-z', page_path(command)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    assert proc.returncode == 0 and err == b'', err


@pytest.mark.parametrize('command', ALL_COMMANDS)
def test_man_renders_the_page(command):
    env = dict(os.environ, MANWIDTH='80', MAN_DISABLE_SECCOMP='1')
    proc = subprocess.Popen(['man', '--warnings', '-l', page_path(command)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert err == b''
    text = out.decode('utf-8')
    for section in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS',
                    'ENVIRONMENT', 'EXIT STATUS', 'EXAMPLES'):
        assert re.search(r'^' + section + r'$', text, re.M), section
