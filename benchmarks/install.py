#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Benchmark eustore-install-image end to end against the fastest shell
pipeline that bundles the same tarball, and against its own stages.

A seeded disk-like image (tests/support/images.py) is packed as an HVM
image tarball (one top directory, one .img member, so no kernel and no
admin account are needed), described in a catalog (size and SHA-256) and
served from loopback by tests/support/http.StoreServer; moto_server
(tests/support/moto.MotoCloud) is the cloud.  Then, in the same run, each
in a process of its own, measured by benchmarks/harness.py:

  end to end  the real eustore-install-image command with a eucarc-like
              environment (-i NAME -b BUCKET --no-progress)
  igzip -1    igzip -dc TARBALL | tar -xO | igzip -1 | openssl enc ... |
              split, on the store's copy of the tarball: bundling only,
              with no digest, no download and no upload
  download    eustore_plugin.store.download.download of the tarball to a file
  bundle      BundleWriter over the tarball's image, read as
              benchmarks/bundle.py reads it (inflate.open_gzip_reader)
  upload      as many parts as that bundle had (same sizes, random bytes),
              each written to a file and sent with Cloud.put_file to moto
  on PY       with --python PY: the same command on another interpreter
              (Python 2.7's built-in path; with --euca2ools SRC on its
              path, euca2ools' bundle, upload and register; with --code
              CHECKOUT, also with an earlier commit's code, e.g. a git
              worktree)

Printed: wall time, image MB/s (10^6 bytes of image per second), CPU,
peak RSS of the command itself and its peak temporary disk, and the
ratios end to end / igzip pipeline (the goal is 1.25 or less) and end to
end / slowest stage.

    python3 benchmarks/install.py [--size-mib 1024] [--repeat 1]
    python3 benchmarks/install.py --link [--latency-ms 40] [--rate-mb 25]
    python3 benchmarks/install.py --sizes [256,1024,4096]
    python3 benchmarks/install.py --ebs [--size-mib 512] [--sparse-mib 2048]
    python3 benchmarks/install.py --ebs --link [--size-mib 256]

``--link`` puts a loopback proxy between the install and moto that makes
each request wait --latency-ms and each connection carry at most
--rate-mb MB/s each way, and runs the install with --upload-concurrency 1
beside its default concurrency.  ``--sizes`` installs images of each size
(MiB) and prints seconds per GiB, peak RSS and peak temporary disk.

``--ebs`` installs EBS-backed (--ebs: the disk written into a snapshot
through moto's EBS direct APIs) side by side with the instance-store
install of the same tarball and with the floor, reading and hashing the
disk (inflating the tarball, and SHA-256 of each 512 KiB block that holds
data, as the snapshot writer does), on a dense disk (--size-mib) and a
sparse one (--sparse-mib virtual, a quarter data: 1 MiB of each 4).  With
--link, the EBS install with --upload-concurrency 1 against its default
(blocks in flight).

Python 3 only (moto is).  Everything runs on loopback: without --link the
figures show the install's own overheads, not those of a network.
"""

from __future__ import absolute_import, division, print_function

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import sys
import tarfile
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from tests.support.commands import command_argv  # noqa: E402

MIB = harness.MIB
GIB = harness.GIB
IMAGE_NAME = 'bench-hvm-x86_64'
TARBALL = IMAGE_NAME + '.tgz'
MEMBER = '{0}/{0}.img'.format(IMAGE_NAME)
BUCKET = 'bench-install'
ACCOUNT = '123456789012'
PART_NAME_RE = re.compile(r'\.part\.\d+$')
REFUSED = re.compile(r'unrecognized arguments|no such option|'
                     r'unknown option', re.I)


def install_defaults():
    """Part size, and how many finished parts may be on disk besides the
    one being written (concurrency + pending), as the install's code says,
    so that the disk limit printed follows any change to them."""
    from eustore_plugin.bundle.writer import DEFAULT_PART_SIZE
    from eustore_plugin.install.builtin import (DEFAULT_PENDING_PARTS,
                                                DEFAULT_UPLOAD_CONCURRENCY)
    return (DEFAULT_PART_SIZE,
            DEFAULT_PENDING_PARTS + DEFAULT_UPLOAD_CONCURRENCY)


# ------------------------------------------------------------ child stages
#
# Each stage runs in a child process of its own, as the install does: the
# store server is a thread of this process, and a stage sharing its GIL
# would be slowed down by it where the install is not.

def stage_generate(config):
    """Write the image tarball and the catalog into the store directory
    (with ``sparse``, a disk of which only 1 MiB in 4 holds data)."""
    image = os.path.join(config['workdir'], IMAGE_NAME + '.img')
    from tests.support.images import write_disk_image
    if config.get('sparse'):
        write_sparse_image(image, config['size_mib'] * MIB, config['seed'])
    else:
        write_disk_image(image, config['size_mib'] * MIB, config['seed'])
    tarball = os.path.join(config['store'], 'images', TARBALL)
    if not os.path.isdir(os.path.dirname(tarball)):
        os.makedirs(os.path.dirname(tarball))
    compressor = harness.write_tarball(image, tarball, MEMBER,
                                       directory=IMAGE_NAME)
    os.remove(image)
    digest = hashlib.sha256()
    with open(tarball, 'rb') as data:
        for chunk in iter(lambda: data.read(MIB), b''):
            digest.update(chunk)
    entry = {'name': IMAGE_NAME, 'os': 'benchmark', 'version': '1',
             'architecture': 'x86_64', 'virtualization_type': 'hvm',
             'description': 'Benchmark image, HVM, {0} MiB'.format(
                 config['size_mib']),
             'url': 'images/' + TARBALL, 'size': os.path.getsize(tarball),
             'sha256': digest.hexdigest()}
    with open(os.path.join(config['store'], 'catalog'), 'w') as catalog:
        json.dump({'images': [entry]}, catalog, indent=2)
    return {'tarball_size': entry['size'], 'compressor': compressor}


def write_sparse_image(path, size, seed):
    """A disk of ``size`` bytes whose first MiB of every 4 is seeded data
    and the rest holes."""
    from tests.support.images import write_disk_image
    dense = path + '.data'
    write_disk_image(dense, size // 4, seed)
    with open(dense, 'rb') as data, open(path, 'wb') as out:
        for start in range(0, size, 4 * MIB):
            out.seek(start)
            out.write(data.read(MIB))
        out.truncate(size)
    os.remove(dense)


def image_in_tarball(tarball):
    """(stream, size) of the tarball's image, read as the install reads
    it (inflate.open_gzip_reader, tarfile's stream mode), to its end."""
    from eustore_plugin.images.inflate import TAR_BUFSIZE, open_gzip_reader
    with open(tarball, 'rb') as raw:
        reader = open_gzip_reader(raw)
        try:
            with tarfile.open(fileobj=reader, mode='r|',
                              bufsize=TAR_BUFSIZE) as tar:
                for member in tar:
                    if member.name == MEMBER:
                        yield tar.extractfile(member), member.size
            while reader.read(1 << 20):
                pass
        finally:
            reader.close()


def stage_floor(config):
    """The least an EBS install does with the disk: the tarball inflated
    and read, and each 512 KiB block that holds data hashed."""
    from eustore_plugin.cloud.ebs import BLOCK_SIZE
    tarball = os.path.join(config['store'], 'images', TARBALL)
    zeros = b'\0' * BLOCK_SIZE
    blocks = 0
    with _StageClock() as clock:
        for disk, _ in image_in_tarball(tarball):
            for block in iter(lambda: disk.read(BLOCK_SIZE), b''):
                if block != zeros[:len(block)]:
                    hashlib.sha256(block).digest()
                    blocks += 1
    return {'seconds': clock.seconds, 'cpu': clock.cpu, 'blocks': blocks}


class _StageClock(object):
    """Wall and CPU time (all threads) of the block it times."""

    def __enter__(self):
        self.started = time.time()
        self._cpu = self._cpu_now()
        return self

    def __exit__(self, *exc):
        self.seconds = time.time() - self.started
        self.cpu = self._cpu_now() - self._cpu

    @staticmethod
    def _cpu_now():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime


def stage_download(config):
    from requestbuilder.config import ConfigData, ConfigView

    from eustore_plugin.catalogs.catalog import CatalogImage
    from eustore_plugin.store.download import download, verify
    from eustore_plugin.store.service import EustoreService
    service = EustoreService(ConfigView(ConfigData([])),
                             url=config['store_url'])
    service.configure()
    with open(os.path.join(config['store'], 'catalog')) as catalog:
        image = CatalogImage(json.load(catalog)['images'][0],
                             catalog_url=config['store_url'] + 'catalog')
    dest = os.path.join(config['workdir'], TARBALL)
    # Checked as the install checks it; the hashes are made on the way in,
    # so verify() itself costs nothing.
    with _StageClock() as clock:
        verify(download(service.open_url, image.location, dest,
                        expected_size=image.size), image)
    os.remove(dest)
    return {'seconds': clock.seconds, 'cpu': clock.cpu}


def stage_bundle(config):
    from eustore_plugin.bundle import BundleWriter
    part_size, pending = install_defaults()
    tarball = os.path.join(config['store'], 'images', TARBALL)
    keys = config['keys']
    writer = BundleWriter(IMAGE_NAME, 'machine', 'x86_64', ACCOUNT,
                          keys['user_cert'], keys['user_key'],
                          keys['cloud_cert'], part_size=part_size,
                          workdir=config['workdir'],
                          max_pending_parts=pending)
    parts = []
    with _StageClock() as clock:
        for image, size in image_in_tarball(tarball):
            # Resuming the generator deletes the part seen.
            for part in writer.bundle(image, size):
                parts.append(part.size)
        writer.manifest()
    return {'seconds': clock.seconds, 'cpu': clock.cpu, 'part_sizes': parts}


def stage_upload(config):
    from tests.support.moto import direct_cloud
    cloud = direct_cloud(types.SimpleNamespace(**config['moto']))
    bucket = 'bench-upload'
    if not cloud.bucket_exists(bucket):
        cloud.create_bucket(bucket)
    seconds = cpu = 0.0
    try:
        for index, size in enumerate(config['part_sizes']):
            name = '{0}.part.{1:02d}'.format(IMAGE_NAME, index)
            path = os.path.join(config['workdir'], name)
            # Written just before it is sent, as the bundler's parts are,
            # so that it comes from the page cache; only the sending counts.
            with open(path, 'wb') as part:
                part.write(os.urandom(size))
            with _StageClock() as clock:
                cloud.put_file(bucket, name, path)
                os.remove(path)
            seconds += clock.seconds
            cpu += clock.cpu
    finally:
        # moto keeps objects in memory: leave none for the next contender.
        empty_bucket(cloud, bucket)
    return {'seconds': seconds, 'cpu': cpu}


STAGES = {'generate': stage_generate, 'download': stage_download,
          'bundle': stage_bundle, 'upload': stage_upload,
          'floor': stage_floor}


def empty_bucket(cloud, bucket):
    for key in cloud.list_keys(bucket):
        cloud.delete_object(bucket, key)
    cloud.delete_bucket(bucket)


# ---------------------------------------------------------------- parent

def user_env(root):
    """The environment of a user with no euca2ools configuration, as the
    tests give the commands (nothing from this shell leaks in)."""
    from tests.support.commands import clean_env
    return clean_env(os.path.join(root, 'home'), PYTHONPATH=harness.REPO)


def run_stage(name, config, root):
    found, measured = harness.run_stage(__file__, name, config, root,
                                        user_env(root))
    # Stages time themselves, after start-up and imports; their memory is
    # the child's.
    found['maxrss'] = measured.maxrss
    return found


def classify(name):
    if name in (TARBALL, TARBALL + '.part'):
        return 'tarball'
    return 'parts' if PART_NAME_RE.search(name) else 'other'


class Bench(object):
    """The store, the cloud and the credentials of one benchmark run."""

    def __init__(self, options):
        from tests.support.http import StoreServer
        from tests.support.keys import KeyPair
        from tests.support.moto import MotoCloud
        executable = harness.moto_server()
        self.options = options
        self.root = tempfile.mkdtemp(prefix='eustore-bench-install-',
                                     dir=options.tmpdir)
        self.store = self.moto = self.link = None
        for directory in ('home', 'keys', 'store'):
            os.mkdir(os.path.join(self.root, directory))
        user = KeyPair(os.path.join(self.root, 'keys'), 'user')
        cloud_keys = KeyPair(os.path.join(self.root, 'keys'), 'cloud')
        self.config = {'seed': options.seed,
                       'store': os.path.join(self.root, 'store'),
                       'keys': {'user_cert': user.cert_path,
                                'user_key': user.key_path,
                                'cloud_cert': cloud_keys.cert_path}}
        self.store = StoreServer(self.config['store']).start()
        # euca2ools signs S3 requests with HMAC-V1, which moto cannot check.
        self.moto = MotoCloud(executable,
                              check_signatures=not options.euca2ools)
        self.config['store_url'] = self.store.url
        self.config['moto'] = {'url': self.moto.url,
                               's3_url': self.moto.s3_url,
                               'key_id': self.moto.key_id,
                               'secret_key': self.moto.secret_key}
        self.user = user
        self.cloud_keys = cloud_keys
        from tests.support.moto import direct_cloud
        self.cloud = direct_cloud(self.moto)
        # moto builds its EC2 backend (hundreds of stock AMIs) on the first
        # EC2 call, about a second and a half: not the install's to pay.
        self.cloud.images_named(IMAGE_NAME)

    def eucarc(self, cloud_url=None):
        from tests.support.moto import REGION
        url = cloud_url or self.moto.url
        # moto answers the EBS direct APIs where its EC2 is.
        return {'EC2_URL': url, 'S3_URL': url, 'EUARE_URL': url,
                'EBS_URL': url,
                'AWS_DEFAULT_REGION': REGION,
                'AWS_ACCESS_KEY_ID': self.moto.key_id,
                'AWS_SECRET_ACCESS_KEY': self.moto.secret_key,
                'EC2_CERT': self.user.cert_path,
                'EC2_PRIVATE_KEY': self.user.key_path,
                'EUCALYPTUS_CERT': self.cloud_keys.cert_path,
                'EC2_USER_ID': ACCOUNT, 'EUSTORE_URL': self.store.url}

    @property
    def tarball(self):
        return os.path.join(self.config['store'], 'images', TARBALL)

    def generate(self, size_mib, sparse=False):
        print('generating a {0} MiB {1}image tarball (seed {2}) ...'.format(
            size_mib, 'sparse ' if sparse else '', self.options.seed))
        sys.stdout.flush()
        self.config['size_mib'] = size_mib
        self.config['sparse'] = sparse
        generated = run_stage('generate', self.config, self.root)
        # Into the page cache, so the store serves every run from memory.
        harness.warm(self.tarball)
        return generated

    def install(self, extra_args=(), cloud_url=None, python=None,
                code=None):
        """The real command, as a user with a sourced eucarc runs it (on
        ``python``, with --euca2ools on its path, when given; with the
        eustore_plugin of the checkout ``code``, when given)."""
        tmpdir = tempfile.mkdtemp(dir=self.root, prefix='install-tmp-')
        env = dict(user_env(self.root), TMPDIR=tmpdir,
                   **self.eucarc(cloud_url))
        if code:
            env['PYTHONPATH'] = os.pathsep.join([
                os.path.abspath(code), env['PYTHONPATH']])
        if python and self.options.euca2ools:
            env['PYTHONPATH'] = os.pathsep.join([
                env['PYTHONPATH'], os.path.abspath(self.options.euca2ools)])
        output = os.path.join(self.root, 'install.out')
        watch = harness.DiskWatcher(tmpdir, classify)
        moto_pid = self.moto._proc.pid  # MotoCloud keeps its process private
        moto_before = harness.process_cpu(moto_pid)
        target = [] if '--ebs' in extra_args else ['-b', BUCKET]
        with open(output, 'wb') as out:
            measured = harness.run_measured(
                command_argv('eustore-install-image', python=python) +
                ['-i', IMAGE_NAME, '--no-progress'] + target +
                list(extra_args), env=env, stdout=out, stderr=out,
                watch=watch)
        moto_cpu = harness.process_cpu(moto_pid) - moto_before
        with open(output, 'rb') as out:
            printed = out.read().decode('utf-8', 'replace')
        match = re.search(r'Installed new (?:EBS-backed )?image (\S+)'
                          r'(?: \(snapshot (\S+)\))?', printed)
        # Deregistered and emptied so that the next run installs afresh
        # and moto does not hold every run's parts or blocks in memory.
        if match:
            self.cloud.deregister_image(match.group(1))
            if match.group(2):
                self.cloud.delete_snapshot(match.group(2))
        if self.cloud.bucket_exists(BUCKET):
            empty_bucket(self.cloud, BUCKET)
        leftovers = harness.files_under(tmpdir)
        shutil.rmtree(tmpdir)
        if measured.returncode != 0:
            if extra_args and REFUSED.search(printed):
                raise SystemExit(
                    'eustore-install-image refused {0}: this version does '
                    'not have the option yet, so this mode cannot run '
                    '({1})'.format(' '.join(extra_args),
                                   printed.strip().splitlines()[-1]))
            raise SystemExit('eustore-install-image failed (exit {0}): {1}'
                             .format(measured.returncode, printed))
        result = measured._asdict()
        result.update(moto_cpu=moto_cpu, peak=dict(watch.peak),
                      seen=watch.seen, leftovers=leftovers)
        return result

    def pipeline(self):
        part_size, _ = install_defaults()
        return harness.run_pipeline(self.tarball, 'igzip -1', self.root,
                                    part_size)

    def close(self):
        if self.link is not None:
            self.link.stop()
        if self.store is not None:
            self.store.stop()
        if self.moto is not None:
            self.moto.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def figures(label, result, size):
    wall = result.get('wall', result.get('seconds'))
    return [label, '{0:.2f}'.format(wall),
            '{0:.1f}'.format(size / wall / 1e6),
            '{0:.2f}'.format(result['cpu']),
            '{0:.1f}'.format(result['maxrss'] / 1e6)
            if result.get('maxrss') else '-',
            '{0:.1f}'.format(result['peak_disk'] / MIB)
            if result.get('peak_disk') is not None else '-']


HEADERS = ['', 'wall s', 'image MB/s', 'cpu s', 'peak RSS MB',
           'peak disk MiB']


def report_install(install, pending, part_size):
    peak = install['peak']
    print('peak temporary disk of the install: {0:.1f} MiB: bundle parts '
          '{1:.1f} MiB (limit (concurrency + pending = {2}, + 1) x part '
          'size = {3:.1f} MiB), '
          'tarball {4:.1f} MiB (it streams: none should be on disk), other '
          '{5:.1f} MiB'.format(peak.get('total', 0) / MIB,
                               peak.get('parts', 0) / MIB, pending,
                               (pending + 1) * part_size / MIB,
                               peak.get('tarball', 0) / MIB,
                               peak.get('other', 0) / MIB))
    print('peak RSS of the install: {0:.1f} MB of its own (GNU time); wait4 '
          'on a process forked from this benchmark says {1:.1f} MB, as it '
          'counts what that process had when forked'.format(
              install['maxrss'] / 1e6, install['maxrss_wait4'] / 1e6))
    parts = install['seen'].get('parts')
    if parts:
        print('inside the install (its temporary files): first part at '
              '{0:.2f} s, last at {1:.2f} s, exit at {2:.2f} s'.format(
                  parts[0], parts[1], install['wall']))
    print('cpu during the install: {0:.2f} s its own + {1:.2f} s '
          'moto_server, of the {2:.2f} s that {3} cores x wall offer'.format(
              install['cpu'], install['moto_cpu'],
              harness.cores() * install['wall'], harness.cores()))
    if install['leftovers']:
        print('left behind in its temporary directory: {0}'.format(
            install['leftovers']))


def other_installs(bench, options):
    """(label, run) of the installs on --python: with this checkout's code,
    and with --code's too when given, in turn in the same run."""
    if not options.python:
        return []
    name = 'install on ' + os.path.relpath(options.python) + (
        ' with euca2ools' if options.euca2ools else '')
    found = [(name, lambda: bench.install(python=options.python))]
    if options.code:
        found.append((name + ', code of ' + os.path.basename(
            os.path.abspath(options.code)), lambda: bench.install(
                python=options.python, code=options.code)))
    return found


def mode_default(bench, options):
    part_size, pending = install_defaults()
    generated = bench.generate(options.size_mib)
    size = options.size_mib * MIB
    stages = {}

    def stage(name):
        extra = {}
        if name == 'upload':
            extra['part_sizes'] = stages['bundle'][-1]['part_sizes']
        result = run_stage(name, dict(bench.config, **extra), bench.root)
        stages.setdefault(name, []).append(result)
        return result

    others = other_installs(bench, options)
    runs = harness.take_turns(
        [('install', bench.install)] + others +
        [('pipeline', bench.pipeline),
         ('download', lambda: stage('download')),
         ('bundle', lambda: stage('bundle')),
         ('upload', lambda: stage('upload'))], options.repeat)
    best = dict((label, harness.best(found, 'wall' if 'wall' in found[0]
                                     else 'seconds'))
                for label, found in runs.items())
    bundled = sum(best['bundle']['part_sizes'])
    print('image {0} MiB -> tarball {1:.1f} MiB ({2}) -> bundle {3:.1f} MiB '
          'in {4} parts; {5} cores; best of {6}'.format(
              options.size_mib, generated['tarball_size'] / MIB,
              generated['compressor'], bundled / MIB,
              len(best['bundle']['part_sizes']), harness.cores(),
              options.repeat))
    install, pipeline = best['install'], best['pipeline']
    harness.print_table(HEADERS, [figures('end to end', install, size)] + [
        figures('end to end on ' + label[len('install on '):],
                best[label], size) for label, _ in others] + [
        figures('igzip pipeline', pipeline, size),
        figures('download only', best['download'], size),
        figures('bundle only', best['bundle'], size),
        figures('upload only', best['upload'], size)])
    slowest = max(('download', 'bundle', 'upload'),
                  key=lambda name: best[name]['seconds'])
    print('end to end / igzip pipeline: {0:.2f} (goal <= 1.25)'.format(
        install['wall'] / pipeline['wall']))
    for label, _ in others:
        print('end to end {0} / on this Python: {1:.2f}'.format(
            label[len('install '):], best[label]['wall'] / install['wall']))
    print('end to end / slowest stage ({0}): {1:.2f}'.format(
        slowest, install['wall'] / best[slowest]['seconds']))
    print('stages time themselves after start-up; the install and the '
          'pipeline are whole processes')
    if options.repeat > 1:
        print('every run, wall s: ' + '; '.join(
            '{0} {1}'.format(label, ' '.join('{0:.2f}'.format(
                run.get('wall', run.get('seconds'))) for run in found))
            for label, found in runs.items()))
    report_install(install, pending, part_size)


def mode_link(bench, options):
    part_size, pending = install_defaults()
    generated = bench.generate(options.size_mib)
    size = options.size_mib * MIB
    bench.link = harness.LinkProxy(
        '127.0.0.1', bench.moto.port, latency=options.latency_ms / 1000.0,
        rate=options.rate_mb * 1e6)
    one = ['--upload-concurrency', '1']
    # Refused at once if the command has no such option, before the long
    # runs (install() says so clearly).
    runs = harness.take_turns(
        [('concurrency 1', lambda: bench.install(one, bench.link.url)),
         ('default', lambda: bench.install((), bench.link.url))],
        options.repeat)
    best = dict((label, harness.best(found))
                for label, found in runs.items())
    print('image {0} MiB -> tarball {1:.1f} MiB; cloud behind a link of '
          '{2:.0f} ms per request and {3:.0f} MB/s per connection; {4} '
          'cores; best of {5}'.format(
              options.size_mib, generated['tarball_size'] / MIB,
              options.latency_ms, options.rate_mb, harness.cores(),
              options.repeat))
    harness.print_table(HEADERS, [
        figures('--upload-concurrency 1', best['concurrency 1'], size),
        figures('default concurrency', best['default'], size)])
    print('default / --upload-concurrency 1: {0:.2f}'.format(
        best['default']['wall'] / best['concurrency 1']['wall']))
    print('requests through the link: {0}, bytes up {1:.1f} MB, down '
          '{2:.1f} MB'.format(bench.link.requests, bench.link.sent / 1e6,
                              bench.link.received / 1e6))
    report_install(best['default'], pending, part_size)


def mode_sizes(bench, options):
    part_size, pending = install_defaults()
    rows = []
    for size_mib in options.sizes:
        generated = bench.generate(size_mib)
        install = harness.best([bench.install()
                                for _ in range(options.repeat)])
        pipeline = harness.best([bench.pipeline()
                                 for _ in range(options.repeat)])
        gib = size_mib * MIB / GIB
        rows.append([
            '{0} MiB'.format(size_mib),
            '{0:.1f}'.format(generated['tarball_size'] / MIB),
            '{0:.2f}'.format(install['wall']),
            '{0:.2f}'.format(install['wall'] / gib),
            '{0:.2f}'.format(pipeline['wall'] / gib),
            '{0:.2f}'.format(install['wall'] / pipeline['wall']),
            '{0:.1f}'.format(install['maxrss'] / 1e6),
            '{0:.1f}'.format(install['peak']['total'] / MIB)])
        os.remove(bench.tarball)
    print('end to end installs; {0} cores; best of {1}; part files are '
          'bounded by (concurrency + pending = {2}, + 1) x {3:.0f} MiB'.format(
              harness.cores(), options.repeat, pending, part_size / MIB))
    harness.print_table(['image', 'tarball MiB', 'wall s', 's/GiB',
                         'igzip pipeline s/GiB', '/ pipeline',
                         'peak RSS MB', 'peak disk MiB'], rows)


def mode_ebs(bench, options):
    rows, ratios = [], []
    for label, size_mib, sparse in (
            ('dense', options.size_mib, False),
            ('sparse', options.sparse_mib, True)):
        bench.generate(size_mib, sparse=sparse)
        size = size_mib * MIB
        runs = harness.take_turns(
            [('instance-store', bench.install),
             ('ebs', lambda: bench.install(['--ebs'])),
             ('floor', lambda: run_stage('floor', bench.config,
                                         bench.root))], options.repeat)
        best = dict((name, harness.best(found, 'wall' if 'wall' in found[0]
                                        else 'seconds'))
                    for name, found in runs.items())
        rows.extend([
            figures('{0} {1} MiB, instance-store'.format(label, size_mib),
                    best['instance-store'], size),
            figures('{0} {1} MiB, --ebs'.format(label, size_mib),
                    best['ebs'], size),
            figures('{0} {1} MiB, floor ({2} data blocks)'.format(
                label, size_mib, best['floor']['blocks']),
                best['floor'], size)])
        ratios.append((label, best['ebs']['wall'] /
                       best['instance-store']['wall'],
                       best['ebs']['wall'] / best['floor']['seconds'],
                       best['ebs']['moto_cpu'],
                       best['instance-store']['moto_cpu'],
                       best['floor']['blocks']))
        os.remove(bench.tarball)
    print('{0} cores; best of {1}'.format(harness.cores(), options.repeat))
    harness.print_table(HEADERS, rows)
    for label, to_bundle, to_floor, moto_ebs, moto_bundle, blocks in ratios:
        print('{0}: --ebs / instance-store {1:.2f} (goal <= {2}); --ebs / '
              'floor {3:.2f}'.format(label, to_bundle, '1.0' if label ==
                                     'dense' else '0.8', to_floor))
        # moto's own CPU is the cloud's, on the same cores as the install.
        print('{0}: moto_server cpu {1:.2f} s for --ebs ({2:.1f} ms for each '
              'of {3} blocks), {4:.2f} s for instance-store'.format(
                  label, moto_ebs, 1000 * moto_ebs / max(blocks, 1), blocks,
                  moto_bundle))


def mode_ebs_link(bench, options):
    bench.generate(options.size_mib)
    size = options.size_mib * MIB
    bench.link = harness.LinkProxy(
        '127.0.0.1', bench.moto.port, latency=options.latency_ms / 1000.0,
        rate=options.rate_mb * 1e6)
    runs = harness.take_turns(
        [('one', lambda: bench.install(['--ebs', '--upload-concurrency',
                                        '1'], bench.link.url)),
         ('default', lambda: bench.install(['--ebs'], bench.link.url))],
        options.repeat)
    best = dict((label, harness.best(found))
                for label, found in runs.items())
    print('--ebs, image {0} MiB; cloud behind a link of {1:.0f} ms per '
          'request and {2:.0f} MB/s per connection; {3} cores; best of '
          '{4}'.format(options.size_mib, options.latency_ms,
                       options.rate_mb, harness.cores(), options.repeat))
    harness.print_table(HEADERS, [
        figures('--upload-concurrency 1', best['one'], size),
        figures('default (blocks in flight)', best['default'], size)])
    print('--upload-concurrency 1 / default: {0:.2f}x faster with blocks '
          'in flight (goal >= 8)'.format(
              best['one']['wall'] / best['default']['wall']))
    print('cpu during the default install: {0:.2f} s its own + {1:.2f} s '
          'moto_server, of the {2:.2f} s that {3} cores x wall offer'.format(
              best['default']['cpu'], best['default']['moto_cpu'],
              harness.cores() * best['default']['wall'], harness.cores()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mib', type=int, default=None,
                        help='the image\'s size (default: 1024; with --ebs, '
                        'the dense disk\'s, 512)')
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs of each; the best wall time is shown')
    parser.add_argument('--seed', type=int, default=20240501)
    parser.add_argument('--tmpdir', default=None,
                        help='where the store, keys and temporary files go')
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument('--link', action='store_true',
                       help='the cloud behind a slow link: '
                       '--upload-concurrency 1 against the default')
    parser.add_argument('--ebs', action='store_true',
                        help='EBS-backed installs beside instance-store '
                        'ones and the floor; with --link, blocks in flight '
                        'against one at a time')
    parser.add_argument('--sparse-mib', type=int, default=2048,
                        help='with --ebs: the sparse disk\'s size')
    modes.add_argument('--sizes', nargs='?', const='256,1024,4096',
                       help='install each size (MiB, comma-separated; '
                       'default 256,1024,4096)')
    parser.add_argument('--python', default=None,
                        help='also install with this interpreter (e.g. '
                        '.venv27/bin/python), in turn with this one')
    parser.add_argument('--euca2ools', metavar='SRC', default=None,
                        help='with --python: a euca2ools source tree on its '
                        'path, so installs go through euca2ools')
    parser.add_argument('--code', metavar='CHECKOUT', default=None,
                        help='with --python: also install with the '
                        'eustore_plugin of this checkout (an earlier '
                        'commit\'s, to compare with)')
    parser.add_argument('--latency-ms', type=float, default=40.0)
    parser.add_argument('--rate-mb', type=float, default=25.0,
                        help='MB/s each connection carries each way')
    harness.stage_arguments(parser)
    options = parser.parse_args()
    if harness.run_asked_stage(options, STAGES):
        return
    if options.size_mib is None:
        options.size_mib = 512 if options.ebs else 1024
    if options.sizes:
        options.sizes = [int(size) for size in options.sizes.split(',')]
    if options.ebs:
        mode = mode_ebs_link if options.link else mode_ebs
    else:
        mode = mode_link if options.link else mode_sizes if options.sizes \
            else mode_default
    harness.run_bench(lambda: Bench(options), lambda bench: mode(bench,
                                                                 options))


if __name__ == '__main__':
    main()
