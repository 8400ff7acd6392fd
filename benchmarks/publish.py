#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Benchmark the local half of eustore-publish-image: reading a tarball once
for its member list (the layout check), its size, SHA-256 and MD5.

A seeded disk image (benchmarks/bundle.py's generator) is packed as an HVM
image tarball with gzip -6.  Then, on the same file, in the same run:

  ours       eustore_plugin.publisher.inspect_tarball (one pass: the bytes
             are hashed as tarfile decompresses them)
  tools      what an operator would otherwise run: sha256sum, md5sum and
             tar -tzf, one after the other
  tar -tzf   the decompression alone, the floor for any layout check

Printed: wall time and MB/s (10^6 bytes of tarball per second) of each,
and the ratios ours / tools and ours / tar -tzf.

    python3 benchmarks/publish.py [--size-mib 256]
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from eustore_plugin.publish.tarball import inspect_tarball  # noqa: E402
from tests.support.images import write_disk_image  # noqa: E402

MIB = 1024 * 1024


def timed(function):
    start = time.time()
    function()
    return time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mib', type=int, default=256)
    options = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='eustore-bench-publish-')
    try:
        image = os.path.join(workdir, 'bench.img')
        write_disk_image(image, options.size_mib * MIB, seed=5)
        tarball = os.path.join(workdir, 'bench-hvm.tgz')
        with tarfile.open(tarball, 'w:gz', compresslevel=6) as tar:
            tar.add(image, arcname='bench-hvm/bench-hvm.img')
        os.remove(image)
        size = os.path.getsize(tarball)

        def tools():
            for command in (['sha256sum', tarball], ['md5sum', tarball],
                            ['tar', '-tzf', tarball]):
                subprocess.check_call(command, stdout=subprocess.DEVNULL)

        runs = [
            ('ours', timed(lambda: inspect_tarball(tarball))),
            ('tools', timed(tools)),
            ('tar -tzf', timed(lambda: subprocess.check_call(
                ['tar', '-tzf', tarball], stdout=subprocess.DEVNULL))),
        ]
        print('tarball: {0:.1f} MB ({1} MiB image)'.format(
            size / 1e6, options.size_mib))
        for name, seconds in runs:
            print('{0:<10} {1:7.2f} s {2:8.1f} MB/s'.format(
                name, seconds, size / 1e6 / seconds))
        times = dict(runs)
        print('ratio ours / tools:    {0:.2f}'.format(
            times['ours'] / times['tools']))
        print('ratio ours / tar -tzf: {0:.2f}'.format(
            times['ours'] / times['tar -tzf']))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
