# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Man pages: complete against --help, and clean under groff and man."""

from __future__ import absolute_import

import os.path
import re
import subprocess

import pytest

from eustore_plugin.store.kinds import STORE_DOCUMENTS
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


# groff's default device (PostScript) and the terminal's: characters one
# lacks are warned about only there.
@pytest.mark.parametrize('device', ['ps', 'utf8'])
@pytest.mark.parametrize('command', ALL_COMMANDS)
def test_groff_reports_no_warnings(command, device):
    proc = subprocess.Popen(['groff', '-man', '-ww', '-T', device, '-z',
                             page_path(command)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    assert proc.returncode == 0 and err == b'', err


def rendered(command):
    """The page as man shows it at 80 columns; fails on any warning."""
    env = dict(os.environ, MANWIDTH='80', MAN_DISABLE_SECCOMP='1')
    proc = subprocess.Popen(['man', '--warnings', '-l', page_path(command)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert err == b''
    return out.decode('utf-8')


def section(text, title):
    """A section of a rendered page, up to the next one's heading."""
    match = re.search(r'^' + title + r'\n(.*?)(?=^[A-Z][A-Z ]+$)', text,
                      re.M | re.S)
    assert match, title
    return match.group(1)


def words(text):
    return ' '.join(text.split())


def documents_tried(text):
    """The documents a rendered page says a directory URL is tried as."""
    return re.findall(r'\bURL([a-z][\w./]*\w)', text)


@pytest.mark.parametrize('command', ALL_COMMANDS)
def test_man_renders_the_page(command):
    text = rendered(command)
    for section in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS',
                    'ENVIRONMENT', 'EXIT STATUS', 'EXAMPLES'):
        assert re.search(r'^' + section + r'$', text, re.M), section


STORE_KINDS = ('eustore catalog', 'simplestreams mirror',
               'virt-builder index')


def examples(text):
    """EXAMPLES as (what it says, the command shown) pairs."""
    pairs = []
    for block in re.split(r'\n\s*\n', section(text, 'EXAMPLES')):
        lines = block.splitlines()
        if lines and lines[0].startswith(' ' * 14):
            pairs[-1] = (pairs[-1][0], words(block))
        else:
            pairs.append((words(block), ''))
    return pairs


def test_the_install_page_documents_every_kind_of_store():
    text = rendered('eustore-install-image')
    kinds = section(text, 'KINDS OF STORES')
    for kind in STORE_KINDS:
        assert re.search(r'^ {7}' + kind + r'$', kinds, re.M), kind
    # What a directory URL is tried as, in the order the code tries.
    assert documents_tried(kinds) == list(STORE_DOCUMENTS)
    for fact in ('local path or file:// URL is a directory or a document '
                 'by what it is', 'SHA-512', 'SHA-256', 'backing file',
                 'qemu-img convert -f qcow2 -O raw', 'xz-compressed',
                 '10 GiB', 'registered as an HVM image'):
        assert fact in words(kinds), fact
    # An install from each kind, with -U naming the store.
    for kind in STORE_KINDS:
        shown = [command for said, command in examples(text)
                 if kind in said and 'eustore-install-image -U ' in command]
        assert shown, kind
    # -U, and the description, point there.
    assert 'see KINDS OF STORES' in words(section(text, 'OPTIONS'))


def test_the_describe_page_says_where_a_store_url_is_read():
    store_url = words(section(rendered('eustore-describe-images'),
                              'STORE URL'))
    assert documents_tried(store_url) == list(STORE_DOCUMENTS)
    assert 'a file is read as the document it holds, whatever its name' in \
        store_url
    assert 'http://emis.eucalyptus.com/, which no longer serves images' in \
        store_url
