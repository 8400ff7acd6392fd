# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
README.md as a new reader meets it: its first example lists a store the
reader can reach (the one scripts/demo writes), run as shown; other kinds
of stores have a heading of their own, saying what the code does.
"""

from __future__ import absolute_import

import json
import os.path
import re
import shlex
import subprocess
import sys

from eustore_plugin.store.kinds import STORE_DOCUMENTS
from tests.support.paths import checkout_path


def readme():
    with open(checkout_path('README.md'), 'rb') as text:
        return text.read().decode('utf-8')


def shell_commands(text):
    """The commands of each ```sh block, in order: one list of commands
    (each a list of words, comments dropped) a block."""
    blocks = re.findall(r'^```sh\n(.*?)^```', text, re.M | re.S)
    return [[shlex.split(line, comments=True)
             for line in block.replace('\\\n', ' ').splitlines()
             if shlex.split(line, comments=True)] for block in blocks]


def section(text, heading):
    match = re.search(r'^## ' + heading + r'\n(.*?)(?=^## |\Z)', text,
                      re.M | re.S)
    assert match, heading
    return match.group(1)


def test_the_first_example_lists_the_demos_store(cli, user_env, tmpdir):
    block = next(commands for commands in shell_commands(readme())
                 if any(command[0].startswith('eustore-')
                        for command in commands))
    first = next(command for command in block
                 if command[0].startswith('eustore-'))
    # The same block writes the store first, with the demo.
    writes = block[:block.index(first)]
    (directory,) = [command[3] for command in writes
                    if command[:3] == ['bash', 'scripts/demo', '--store']]
    assert first[:3] == ['eustore-describe-images', '-U', directory]

    def as_run(word):
        return user_env['HOME'] + word[1:] if word.startswith('~/') else word
    # scripts/demo runs scripts/demo.py with the project's Python; this one
    # will do.
    demo = subprocess.Popen([sys.executable, checkout_path(
        'scripts', 'demo.py'), '--store', as_run(directory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=user_env)
    out, err = demo.communicate()
    assert demo.returncode == 0, err
    result = cli(*[as_run(word) for word in first])
    assert result.returncode == 0, result.stderr
    # The demo's three images (the euca2ools 2 one named by its checksum,
    # which differs with the Python that wrote it).
    with open(os.path.join(as_run(directory), 'catalog')) as catalog:
        names = [image['name'] for image in json.load(catalog)['images']]
    assert len(names) == 3
    assert [line.split('\t')[0] for line in result.lines] == names
    assert result.messages == []  # the unsigned warning alone


def test_other_kinds_of_stores_have_a_heading():
    other = section(readme(), 'Other kinds of stores')
    for kind in ('simplestreams mirror', 'virt-builder index'):
        assert '**{0}**'.format(kind) in other
    # What a directory URL is tried as, in the order the code tries.
    assert re.findall(r'`<url>([^`]+)`', other) == list(STORE_DOCUMENTS)
    installs = [command for commands in shell_commands(other)
                for command in commands
                if command[:2] == ['eustore-install-image', '-U']]
    assert len(installs) == 2
