#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Benchmark what crafted store documents cost: peak RSS and CPU of reading,
in a child process of its own, each at several sizes.

  xz bomb     an xz disk of N MiB of zeros (a few KiB of xz) read to its
              end through images.diskimage.xz_reader, 1 MiB at a time, as
              an install reads it
  ss bomb     a simplestreams products file with N attributes at its top
              and N items (tests/support/hostile.products_bomb), parsed by
              catalogs.simplestreams.parse_products

Printed: each run's CPU seconds and peak RSS (GNU time's, as in
benchmarks/harness.py), and each size's CPU over the smallest one's
against the ratio of their sizes (linear work keeps the two alike).  With
--code CHECKOUT the same runs are made with an earlier checkout's code too,
in turn in the same run, to compare with.

    python3 benchmarks/hostile.py [--code ../earlier] [--xz-mib 64,256]
                                  [--ss-count 2000,4000]
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import benchmarks.harness as harness  # noqa: E402
from tests.support.hostile import (products_bomb,  # noqa: E402
                                   xz_of_zeros)

# What each child runs: only what earlier checkouts had too (xz_reader took
# no limit before it held one).
_READ_XZ = '''
import sys
from eustore_plugin.images.diskimage import xz_reader
source = open(sys.argv[1], 'rb')
try:
    reader = xz_reader(source, None)
except TypeError:
    reader = xz_reader(source)
total = 0
for piece in iter(lambda: reader.read(1 << 20), b''):
    total += len(piece)
assert total == int(sys.argv[2]), total
'''
_PARSE_PRODUCTS = '''
import sys
from eustore_plugin.catalogs.simplestreams import parse_products
with open(sys.argv[1], 'rb') as document:
    versions, _ = parse_products(document.read(),
                                 'http://example.com/streams/v1/bomb.json')
assert len(versions) == 1
'''


def sizes(text):
    return [int(part) for part in text.split(',') if part]


def measure(code, script, args):
    env = harness.python_env()
    if code:
        env['PYTHONPATH'] = os.pathsep.join([os.path.abspath(code),
                                             env['PYTHONPATH']])
    return harness.check(harness.run_measured(
        [sys.executable, '-c', script] + [str(arg) for arg in args],
        env=env), 'the child')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--code', metavar='CHECKOUT',
                        help='also with the code of this earlier checkout')
    parser.add_argument('--xz-mib', default='64,256',
                        help='sizes of the xz disks, in MiB')
    parser.add_argument('--ss-count', default='2000,4000',
                        help='attributes and items of the products files')
    options = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='eustore-bench-hostile-')
    codes = [('this checkout', None)]
    if options.code:
        codes.append((os.path.basename(os.path.abspath(options.code)),
                      options.code))
    # The children's "python -c" puts the current directory first on their
    # path: away from any checkout, so that PYTHONPATH says whose code runs.
    os.chdir(workdir)
    try:
        inputs = []
        for mib in sizes(options.xz_mib):
            path = os.path.join(workdir, 'zeros-{0}.xz'.format(mib))
            xz_of_zeros(path, mib * harness.MIB)
            inputs.append(('xz bomb', '{0} MiB'.format(mib), mib, _READ_XZ,
                           [path, mib * harness.MIB]))
        for count in sizes(options.ss_count):
            path = os.path.join(workdir, 'bomb-{0}.json'.format(count))
            with open(path, 'wb') as out:
                out.write(products_bomb(count))
            inputs.append(('ss bomb', '{0} x {0}'.format(count), count,
                           _PARSE_PRODUCTS, [path]))
        rows = []
        for label, code in codes:
            smallest = {}
            for kind, shown, size, script, args in inputs:
                run = measure(code, script, args)
                first = smallest.setdefault(kind, (size, run.cpu))
                rows.append([label, kind, shown, '{0:.2f}'.format(run.cpu),
                             '{0:.1f}'.format(run.maxrss / 1e6),
                             '{0:.1f}'.format(run.cpu / first[1]),
                             '{0:.1f}'.format(size / first[0])])
        harness.print_table(['code', 'input', 'size', 'cpu s', 'peak MB',
                             'cpu ratio', 'size ratio'], rows)
    finally:
        os.chdir(REPO)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
