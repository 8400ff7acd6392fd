# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""The seam's helpers that do not need euca2ools to be tested."""

from __future__ import absolute_import

import subprocess
import sys

# In a child whose stderr the test reads: stderr_without changes file
# descriptor 2 of the whole process.
CHILD = r'''
import subprocess, sys
from eustore_plugin.install.euca2oolstarget import (OPENSSL_NOISE,
                                                     stderr_without)
with stderr_without(OPENSSL_NOISE):
    sys.stderr.write('mine, before\n')
    subprocess.check_call(['sh', '-c', 'echo "$0" >&2; echo theirs >&2',
                           OPENSSL_NOISE[0].decode('ascii')])
    sys.stderr.write('mine, after\n')
sys.stderr.write('outside\n')
'''


def test_openssl_noise_is_dropped_from_what_children_write():
    child = subprocess.Popen([sys.executable, '-c', CHILD],
                             stderr=subprocess.PIPE)
    _, stderr = child.communicate()
    assert child.returncode == 0, stderr
    assert stderr.decode('ascii').splitlines() == [
        'mine, before', 'theirs', 'mine, after', 'outside']
