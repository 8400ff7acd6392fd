# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
--help without wrap artefacts: a help text broken in the source after a
hyphen ("hypervisor-" at the end of one line, "specific" on the next)
reaches the reader as "hypervisor- specific", since argparse and
requestbuilder join the source's lines with a space.
"""

from __future__ import absolute_import

import importlib
import re

import pytest

from tests.support.commands import COMMANDS

# A word ending in "-", a space, then a word.
ARTEFACT = re.compile(r'[A-Za-z0-9]- [A-Za-z]')


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_no_help_line_has_a_wrap_artefact(cli, command):
    # Wide enough that argparse wraps no option's help, so that every
    # option's text is on one line, as it was joined.
    result = cli(command, '--help', env={'COLUMNS': '2000'})
    assert result.returncode == 0, result
    found = [line for line in result.lines if ARTEFACT.search(line)]
    assert found == []


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_no_description_has_a_wrap_artefact(command):
    # The description is rewrapped to 70 columns, where an artefact may
    # fall at a line's end: its source is checked as it is joined.
    module, name = COMMANDS[command].split(':')
    description = getattr(importlib.import_module(module), name).DESCRIPTION
    joined = ' '.join(description.split())
    assert ARTEFACT.findall(joined) == []
