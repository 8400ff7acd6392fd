#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Benchmark the snapshot writer (eustore_plugin/install/snapshot.py) alone:
a disk image file written into a new snapshot of moto_server
(tests/support/moto.MotoCloud) through the EBS direct APIs, against the
floor, the same process reading the disk and hashing it as the writer
does (512 KiB blocks, all-zero ones skipped, SHA-256 of the others) and
sending nothing.

Two disks, made once per run: dense, --dense-mib (512) of a seeded
disk-like image (tests/support/images.write_disk_image) with a sector of
text at the start of each 512 KiB block that was all zeros, so that every
block holds data; and sparse, --sparse-mib (2048) of which every fourth MiB
holds such data (a quarter of its blocks).  Each
contender runs in a process of its own, measured by benchmarks/harness.py
(wall time of the whole process, CPU, peak RSS); moto_server's CPU during
each write is shown beside it.

    python3 benchmarks/snapshot.py [--repeat 1]
    python3 benchmarks/snapshot.py --link [--link-mib 128] [--latency-ms 40]
        [--rate-mb 25] [--concurrency 1,16]

``--link`` puts a loopback proxy between the writer and moto that makes
each request wait --latency-ms and each connection carry at most
--rate-mb MB/s each way, and writes a dense --link-mib disk at each
--concurrency (blocks in flight; the first is the reference).

Python 3 only (moto is).  moto keeps every block written in memory, also
after the snapshot is deleted (its EBS half forgets nothing): a run holds
a few GB.
"""

from __future__ import absolute_import, division, print_function

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MIB = harness.MIB
# The sparse disk: one MiB of data at the start of every SPARSE_STRIDE.
SPARSE_STRIDE = 4 * MIB


# ------------------------------------------------------------ child stages

def write_dense(path, size, seed):
    """A disk-like image every 512 KiB block of which holds data."""
    from eustore_plugin.cloud.ebs import BLOCK_SIZE
    from tests.support.images import write_disk_image
    write_disk_image(path, size, seed)
    zeros = b'\0' * BLOCK_SIZE
    with open(path, 'r+b') as disk:
        for offset in range(0, size, BLOCK_SIZE):
            disk.seek(offset)
            if disk.read(BLOCK_SIZE) == zeros[:min(BLOCK_SIZE,
                                                   size - offset)]:
                disk.seek(offset)
                disk.write(('sector at {0}\n'.format(offset) * 256).encode(
                    'ascii')[:min(4096, size - offset)])


def stage_generate(config):
    """The dense disk, and the sparse one made of the dense one's MiBs."""
    dense, sparse = config['dense'], config['sparse']
    write_dense(dense, config['dense_mib'] * MIB, config['seed'])
    source = dense
    if config['sparse_mib'] // 4 > config['dense_mib']:
        source = os.path.join(config['workdir'], 'data.img')
        write_dense(source, config['sparse_mib'] // 4 * MIB,
                    config['seed'] + 1)
    with open(source, 'rb') as data, open(sparse, 'wb') as out:
        out.truncate(config['sparse_mib'] * MIB)
        for offset in range(0, config['sparse_mib'] * MIB, SPARSE_STRIDE):
            out.seek(offset)
            out.write(data.read(MIB))
    if source != dense:
        os.remove(source)
    return dict((name, blocks_with_data(config[name]))
                for name in ('dense', 'sparse'))


def blocks_with_data(path):
    from eustore_plugin.install.snapshot import data_blocks
    with open(path, 'rb') as disk:
        return sum(1 for _ in data_blocks(disk, os.path.getsize(path)))


def stage_floor(config):
    """What the writer does with the disk, without sending it."""
    import hashlib

    from eustore_plugin.install.snapshot import data_blocks
    aggregate = hashlib.sha256()
    with open(config['disk'], 'rb') as disk:
        for _, block in data_blocks(disk, os.path.getsize(config['disk'])):
            aggregate.update(hashlib.sha256(block).digest())
    return {'checksum': aggregate.hexdigest()}


def stage_write(config):
    from requestbuilder.config import ConfigData, ConfigView

    from eustore_plugin import compat
    from eustore_plugin.cloud.ebs import EBS, EbsDirect
    from eustore_plugin.install.journal import Journal
    from eustore_plugin.install.snapshot import SnapshotWriter
    from tests.support.moto import REGION, direct_cloud
    compat.install()
    moto = types.SimpleNamespace(**config['moto'])
    cloud = direct_cloud(moto, config['url'])
    service = EBS(ConfigView(ConfigData([])), ec2=cloud.ec2,
                  loglevel=logging.CRITICAL,
                  url='{0}::{1}'.format(REGION, config['url']))
    service.configure()
    journal = Journal(cloud.identity(None), config['workdir'])
    writer = SnapshotWriter(EbsDirect(cloud, service), cloud, journal,
                            concurrency=config['concurrency'])
    started = time.time()
    with open(config['disk'], 'rb') as disk:
        snapshot = writer.write(disk, os.path.getsize(config['disk']),
                                description='benchmark')
    journal.finish()
    return {'snapshot': snapshot.id, 'blocks': snapshot.blocks,
            'seconds': time.time() - started}


STAGES = {'generate': stage_generate, 'floor': stage_floor,
          'write': stage_write}


# ---------------------------------------------------------------- parent

class Bench(object):
    """moto, the disks and a place for temporary files, of one run."""

    def __init__(self, options):
        from tests.support.moto import MotoCloud, direct_cloud
        executable = harness.moto_server()
        self.options = options
        self.root = tempfile.mkdtemp(prefix='eustore-bench-snapshot-',
                                     dir=options.tmpdir)
        self.link = None
        self.moto = MotoCloud(executable)
        self.cloud = direct_cloud(self.moto)
        # moto builds its EC2 and EBS backends on their first calls (over a
        # second): not the writer's to pay.
        self.cloud.describe_snapshots(owner='self')
        self.disks = {'dense': os.path.join(self.root, 'dense.img'),
                      'sparse': os.path.join(self.root, 'sparse.img')}

    def child(self, name, config):
        """The stage in a child, measured, with the CPU moto and the link
        (threads of this process) used meanwhile."""
        before = {}

        def start():
            before.update(moto=harness.process_cpu(self.moto._proc.pid),
                          link=harness.process_cpu(os.getpid()))
        found, measured = harness.run_stage(__file__, name, config,
                                            self.root, harness.python_env(),
                                            start)
        found.update(measured._asdict(),
                     moto_cpu=harness.process_cpu(self.moto._proc.pid) -
                     before['moto'],
                     link_cpu=harness.process_cpu(os.getpid()) -
                     before['link'])
        return found

    def generate(self):
        options = self.options
        print('generating a dense {0} MiB disk and a sparse {1} MiB one '
              '(seed {2}) ...'.format(options.dense_mib, options.sparse_mib,
                                      options.seed))
        sys.stdout.flush()
        found = self.child('generate', dict(
            self.disks, dense_mib=options.dense_mib,
            sparse_mib=options.sparse_mib, seed=options.seed))
        for path in self.disks.values():
            harness.warm(path)
        return found

    def write(self, disk, concurrency, url=None):
        found = self.child('write', {
            'disk': disk, 'concurrency': concurrency,
            'url': url or self.moto.url,
            'moto': {'url': self.moto.url, 'key_id': self.moto.key_id,
                     'secret_key': self.moto.secret_key}})
        self.cloud.delete_snapshot(found['snapshot'])
        return found

    def floor(self, disk):
        return self.child('floor', {'disk': disk})

    def close(self):
        if self.link is not None:
            self.link.stop()
        self.moto.stop()
        shutil.rmtree(self.root, ignore_errors=True)


HEADERS = ['', 'wall s', 'disk MB/s', 'cpu s', 'moto cpu s', 'peak RSS MB',
           'ms/data block']


def figures(label, result, size, blocks):
    return [label, '{0:.2f}'.format(result['wall']),
            '{0:.0f}'.format(size / result['wall'] / 1e6),
            '{0:.2f}'.format(result['cpu']),
            '{0:.2f}'.format(result['moto_cpu']),
            '{0:.1f}'.format(result['maxrss'] / 1e6),
            '{0:.2f}'.format(result['wall'] / blocks * 1000)]


def mode_default(bench, options):
    from eustore_plugin.install.snapshot import DEFAULT_CONCURRENCY
    blocks = bench.generate()
    contenders = []
    for name in ('dense', 'sparse'):
        disk = bench.disks[name]
        contenders += [
            (name + ' write', lambda disk=disk: bench.write(
                disk, options.concurrency[0])),
            (name + ' floor', lambda disk=disk: bench.floor(disk))]
    runs = harness.take_turns(contenders, options.repeat)
    best = dict((label, harness.best(found))
                for label, found in runs.items())
    print('{0} cores; concurrency {1} (default {2}); best of {3}'.format(
        harness.cores(), options.concurrency[0], DEFAULT_CONCURRENCY,
        options.repeat))
    rows = []
    for name in ('dense', 'sparse'):
        size = os.path.getsize(bench.disks[name])
        total = -(-size // (512 * 1024))
        print('{0}: {1} MiB, {2} of {3} blocks hold data'.format(
            name, size // MIB, blocks[name], total))
        rows += [figures(name + ' write', best[name + ' write'], size,
                         blocks[name]),
                 figures(name + ' floor', best[name + ' floor'], size,
                         blocks[name])]
    harness.print_table(HEADERS, rows)
    for name in ('dense', 'sparse'):
        write, floor = best[name + ' write'], best[name + ' floor']
        print('{0}: write / floor {1:.2f}; moto cpu {2:.2f} ms a data '
              'block'.format(name, write['wall'] / floor['wall'],
                             write['moto_cpu'] / blocks[name] * 1000))
    print('wall times are whole processes (start-up and imports included)')


def mode_link(bench, options):
    options.dense_mib = options.link_mib
    options.sparse_mib = 4  # not written
    blocks = bench.generate()['dense']
    bench.link = harness.LinkProxy(
        '127.0.0.1', bench.moto.port, latency=options.latency_ms / 1000.0,
        rate=options.rate_mb * 1e6)
    disk = bench.disks['dense']
    contenders = [('concurrency {0}'.format(count), lambda count=count:
                   bench.write(disk, count, bench.link.url))
                  for count in options.concurrency]
    runs = harness.take_turns(contenders, options.repeat)
    best = [(label, harness.best(found)) for label, found in runs.items()]
    size = os.path.getsize(disk)
    print('dense {0} MiB disk, {1} blocks with data; cloud behind a link of '
          '{2:.0f} ms per request and {3:.0f} MB/s per connection; {4} '
          'cores; best of {5}'.format(options.link_mib, blocks,
                                      options.latency_ms, options.rate_mb,
                                      harness.cores(), options.repeat))
    harness.print_table(HEADERS + ['link cpu s'], [
        figures(label, result, size, blocks) +
        ['{0:.2f}'.format(result['link_cpu'])] for label, result in best])
    reference = best[0]
    for label, result in best[1:]:
        print('{0} / {1}: {2:.2f}x faster'.format(
            label, reference[0], reference[1]['wall'] / result['wall']))
    print('requests through the link: {0}, bytes up {1:.1f} MB'.format(
        bench.link.requests, bench.link.sent / 1e6))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dense-mib', type=int, default=512)
    parser.add_argument('--sparse-mib', type=int, default=2048)
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs of each; the best wall time is shown')
    parser.add_argument('--seed', type=int, default=20240501)
    parser.add_argument('--tmpdir', default=None)
    parser.add_argument('--concurrency', default=None,
                        help='blocks in flight, comma-separated (default: '
                        'the writer\'s; with --link, 1 and the writer\'s)')
    parser.add_argument('--link', action='store_true',
                        help='the cloud behind a slow link, at each '
                        '--concurrency')
    parser.add_argument('--link-mib', type=int, default=128)
    parser.add_argument('--latency-ms', type=float, default=40.0)
    parser.add_argument('--rate-mb', type=float, default=25.0,
                        help='MB/s each connection carries each way')
    harness.stage_arguments(parser)
    options = parser.parse_args()
    if harness.run_asked_stage(options, STAGES):
        return
    from eustore_plugin.install.snapshot import DEFAULT_CONCURRENCY
    options.concurrency = [int(count) for count in options.concurrency.split(
        ',')] if options.concurrency else (
        [1, DEFAULT_CONCURRENCY] if options.link else [DEFAULT_CONCURRENCY])
    harness.run_bench(lambda: Bench(options), lambda bench: (
        mode_link if options.link else mode_default)(bench, options))


if __name__ == '__main__':
    main()
