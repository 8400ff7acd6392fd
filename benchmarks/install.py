#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Benchmark eustore-install-image end to end against its stages run alone.

A seeded disk image (benchmarks/bundle.py's generator: zero runs, random,
text-like and code-like data) is packed as an HVM image tarball (one top
directory, one .img member, so no kernel and no admin account are needed),
described in a catalog (size and SHA-256) and served from loopback by
tests/support/http.StoreServer; moto_server (tests/support/moto.MotoCloud)
is the cloud.  Then, in the same run, each in a process of its own:

  end to end  the real eustore-install-image command with a eucarc-like
              environment (-i NAME -b BUCKET --no-progress, no -d)
  download    eustore_plugin.download.download of the tarball from the store
              to a file, checked against the catalog
  bundle      BundleWriter over the .img member streamed out of the tarball,
              each part deleted as it is handed over
  upload      as many parts as that bundle had (same sizes, random bytes),
              each written to a file and sent with Cloud.put_file to moto

Printed: wall time and MB/s (10^6 bytes of image per second) of each, the
ratios end to end / slowest stage (the goal is 1.25 or less: the stages
overlap) and end to end / sum of the stages, when the install's temporary
files show its first and last bundle parts, its peak RSS (from wait4), and
the peak size of its temporary files (sampled every 5 ms), split into the
tarball (none, as the install streams it) and the bundle part files.  The
end-to-end time is the whole command, start-up and cloud calls included; the
stages are timed inside their processes.

    python3 benchmarks/install.py [--size-mib 1024] [--repeat 1]

Python 3 only (moto is).  Everything runs on loopback, so the store and the
cloud are as fast as this machine lets them be: the figures show the
install's own overheads, not those of a network.
"""

from __future__ import absolute_import, division, print_function

import argparse
import hashlib
import inspect
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.support.commands import command_argv  # noqa: E402
from tests.support.images import write_disk_image  # noqa: E402

MIB = 1024 * 1024
IMAGE_NAME = 'bench-hvm-x86_64'
TARBALL = IMAGE_NAME + '.tgz'
MEMBER = '{0}/{0}.img'.format(IMAGE_NAME)
BUCKET = 'bench-install'
ACCOUNT = '123456789012'
# Pinned, like the gzip header's, so that a seed always gives the same
# tarball and checksum.
MTIME = 1400000000
PART_NAME_RE = re.compile(r'\.part\.\d+$')


def install_defaults():
    """Part size and pending-part limit the install uses, read from its code
    so the disk limit printed follows any change to them."""
    from eustore_plugin.installer import BuiltinBundleUploader
    parameters = inspect.signature(BuiltinBundleUploader).parameters
    return (parameters['part_size'].default,
            parameters['max_pending_parts'].default)


# ------------------------------------------------------------ child stages
#
# Each stage runs in a child process of its own, as the install does: the
# store server is a thread of this process, and a stage sharing its GIL
# would be slowed down by it where the install is not.

def stage_generate(config):
    """Write the image tarball and the catalog into the store directory."""
    size = config['size_mib'] * MIB
    image = os.path.join(config['workdir'], IMAGE_NAME + '.img')
    write_disk_image(image, size, config['seed'])
    tarball = os.path.join(config['store'], 'images', TARBALL)
    os.makedirs(os.path.dirname(tarball))
    pigz = shutil.which('pigz')
    with open(tarball, 'wb') as out:
        # pigz, when there is one, so that generating a large image does not
        # take longer than the benchmark itself; -n keeps the output the
        # same from run to run.
        if pigz:
            compressor = subprocess.Popen([pigz, '-6', '-n', '-c'],
                                          stdin=subprocess.PIPE, stdout=out)
            stream = compressor.stdin
        else:
            import gzip
            compressor = None
            stream = gzip.GzipFile(fileobj=out, mode='wb', compresslevel=6,
                                   mtime=0)
        with tarfile.open(fileobj=stream, mode='w|') as tar:
            top = tarfile.TarInfo(IMAGE_NAME)
            top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(top)
            member = tarfile.TarInfo(MEMBER)
            member.size, member.mode, member.mtime = size, 0o644, MTIME
            with open(image, 'rb') as data:
                tar.addfile(member, data)
        stream.close()
        if compressor is not None and compressor.wait() != 0:
            raise SystemExit('pigz failed')
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
    return {'tarball_size': entry['size'],
            'compressor': 'pigz' if pigz else 'python gzip'}


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
    from eustore_plugin.catalog import CatalogImage
    from eustore_plugin.download import download, verify
    from eustore_plugin.store import EustoreService
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
        with tarfile.open(tarball, 'r|gz') as tar:
            for member in tar:
                if member.name == MEMBER:
                    # Resuming the generator deletes the part just seen.
                    for part in writer.bundle(tar.extractfile(member),
                                              member.size):
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
          'bundle': stage_bundle, 'upload': stage_upload}


def empty_bucket(cloud, bucket):
    for key in cloud.list_keys(bucket):
        cloud.delete_object(bucket, key)
    cloud.delete_bucket(bucket)


# ---------------------------------------------------------------- parent

def user_env(root):
    """The environment of a user with no euca2ools configuration, as the
    tests give the commands (nothing from this shell leaks in)."""
    from tests.support.commands import clean_env
    return clean_env(os.path.join(root, 'home'), PYTHONPATH=REPO)


def run_process(command, env, output_path, watcher=None):
    """Run a child to its end; returns (exit code, rusage, wall seconds).

    wait4 rather than Popen.wait: its rusage is this child's alone, where
    RUSAGE_CHILDREN would mix in every earlier child."""
    with open(output_path, 'wb') as output:
        started = time.time()
        child = subprocess.Popen(command, env=env, stdout=output,
                                 stdin=subprocess.DEVNULL)
        try:
            if watcher is not None:
                watcher.start(started)
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            if watcher is not None:
                watcher.stop()
    child.returncode = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                        else -os.WTERMSIG(status))
    return child.returncode, usage, time.time() - started


def run_stage(name, config, root):
    workdir = tempfile.mkdtemp(dir=root, prefix=name + '-')
    config_path = os.path.join(workdir, 'config.json')
    with open(config_path, 'w') as out:
        json.dump(dict(config, workdir=workdir), out)
    env = dict(user_env(root), TMPDIR=workdir)
    output = os.path.join(root, name + '.out')
    code, _, _ = run_process(
        [sys.executable, os.path.abspath(__file__), '--stage', name,
         '--config', config_path], env, output)
    if code != 0:
        raise SystemExit('the {0} stage failed (exit {1})'.format(name, code))
    shutil.rmtree(workdir)
    with open(output) as result:
        return json.load(result)


def _files_under(root):
    """(name, size) of every file under root; files may vanish meanwhile."""
    directories = [root]
    while directories:
        try:
            entries = list(os.scandir(directories.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    directories.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry.name, entry.stat(follow_symlinks=False).st_size
            except OSError:
                pass


class TempDiskWatcher(object):
    """
    Samples the files under the install's TMPDIR in a thread: peak bytes of
    the tarball (its .part while downloading), of bundle part files, and of
    anything else, and when the download began and ended and parts came and
    went (seconds since the command started).
    """

    def __init__(self, root, interval=0.005):
        self.root = root
        self.interval = interval
        self.peak = {'tarball': 0, 'parts': 0, 'other': 0, 'total': 0}
        self.tarball_started = self.tarball_done = None
        self.first_part = self.last_part = None
        self._stop = threading.Event()
        self._thread = None

    def start(self, started):
        self._started = started
        self._thread = threading.Thread(target=self._run)
        self._thread.daemon = True
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self):
        now = time.time() - self._started
        sizes = {'tarball': 0, 'parts': 0, 'other': 0}
        for name, size in _files_under(self.root):
            if name in (TARBALL, TARBALL + '.part'):
                sizes['tarball'] += size
                if self.tarball_started is None:
                    self.tarball_started = now
                if name == TARBALL and self.tarball_done is None:
                    self.tarball_done = now
            elif PART_NAME_RE.search(name):
                sizes['parts'] += size
            else:
                sizes['other'] += size
        sizes['total'] = sum(sizes.values())
        for kind, size in sizes.items():
            self.peak[kind] = max(self.peak[kind], size)
        if sizes['parts']:
            if self.first_part is None:
                self.first_part = now
            self.last_part = now


def process_cpu(pid):
    """CPU seconds a running process has used so far."""
    with open('/proc/{0}/stat'.format(pid)) as stat:
        # Fields 14 and 15 (utime, stime), counted after the command name,
        # which may itself hold spaces.
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_install(root, eucarc, cloud, moto_pid):
    """The real command, as a user with a sourced eucarc runs it."""
    tmpdir = tempfile.mkdtemp(dir=root, prefix='install-tmp-')
    env = dict(user_env(root), TMPDIR=tmpdir, **eucarc)
    output = os.path.join(root, 'install.out')
    watcher = TempDiskWatcher(tmpdir)
    # On loopback the cloud and the store share the install's cores: their
    # CPU is part of what the end-to-end time is made of.
    moto_before, own_before = process_cpu(moto_pid), own_cpu()
    status, usage, wall = run_process(
        command_argv('eustore-install-image') +
        ['-i', IMAGE_NAME, '-b', BUCKET, '--no-progress'], env, output,
        watcher)
    moto_cpu = process_cpu(moto_pid) - moto_before
    own = own_cpu() - own_before
    with open(output) as out:
        printed = out.read()
    if status != 0:
        raise SystemExit('eustore-install-image failed (exit {0}): {1}'
                         .format(status, printed))
    match = re.search(r'Installed new image (\S+)', printed)
    # Deregistered and emptied so that the next run installs afresh and
    # moto does not hold every run's parts in memory.
    if match:
        cloud.deregister_image(match.group(1))
    empty_bucket(cloud, BUCKET)
    leftovers = list(_files_under(tmpdir))
    shutil.rmtree(tmpdir)
    return {'seconds': wall, 'cpu': usage.ru_utime + usage.ru_stime,
            # ru_maxrss is in KiB on Linux.
            'maxrss': usage.ru_maxrss * 1024, 'peak': watcher.peak,
            'moto_cpu': moto_cpu, 'own_cpu': own,
            'tarball_started': watcher.tarball_started,
            'tarball_done': watcher.tarball_done,
            'first_part': watcher.first_part,
            'last_part': watcher.last_part, 'leftovers': leftovers}


def report(options, generated, runs, cores):
    part_size, pending = install_defaults()
    best = dict((label, min(results, key=lambda run: run['seconds']))
                for label, results in runs.items())
    size = options.size_mib * MIB
    bundle = best['bundle']
    bundled = sum(bundle['part_sizes'])
    print('image {0} MiB -> tarball {1:.1f} MiB (gzip -6, {2}) -> bundle '
          '{3:.1f} MiB in {4} parts of up to {5:.0f} MiB; {6} cores; best '
          'of {7}'.format(options.size_mib, generated['tarball_size'] / MIB,
                          generated['compressor'], bundled / MIB,
                          len(bundle['part_sizes']), part_size / MIB, cores,
                          options.repeat))
    moved = {'download': ('tarball', generated['tarball_size']),
             'bundle': ('image', size), 'upload': ('parts', bundled)}
    labels = (('install', 'end to end'), ('download', 'download only'),
              ('bundle', 'bundle only'), ('upload', 'upload only'))
    print('{0:16s} {1:>8s} {2:>11s} {3:>8s}'.format(
        '', 'wall s', 'image MB/s', 'cpu s'))
    for key, label in labels:
        result = best[key]
        line = '{0:16s} {1:8.2f} {2:11.1f} {3:8.2f}'.format(
            label, result['seconds'], size / result['seconds'] / 1e6,
            result['cpu'])
        if key in moved:
            what, count = moved[key]
            line += '   {0} {1:.0f} MB at {2:.1f} MB/s'.format(
                what, count / 1e6, count / result['seconds'] / 1e6)
        else:
            line += '   whole command, start-up and cloud calls included'
        print(line)
    if options.repeat > 1:
        # The spread tells how far the best runs can be trusted on a busy
        # machine.
        print('every run, wall s: ' + '; '.join(
            '{0} {1}'.format(label, ' '.join(
                '{0:.2f}'.format(run['seconds']) for run in runs[key]))
            for key, label in labels))
    stages = [(key, best[key]['seconds'])
              for key in ('download', 'bundle', 'upload')]
    slowest = max(stages, key=lambda stage: stage[1])
    total = best['install']['seconds']
    print('end to end / slowest stage ({0}): {1:.2f} (goal <= 1.25)'.format(
        slowest[0], total / slowest[1]))
    print('end to end / sum of stages: {0:.2f}'.format(
        total / sum(seconds for _, seconds in stages)))

    install = best['install']

    def when(seconds):
        return 'never seen' if seconds is None else '{0:.2f} s'.format(
            seconds)
    # Before the first part: interpreter start-up, imports, the catalog,
    # the already-installed check and the first part's compression (the
    # tarball streams from the store into the bundler).
    print('inside the install (from its temporary files): first part at '
          '{0}, last part at {1}, exit at {2:.2f} s'.format(
              when(install['first_part']), when(install['last_part']),
              install['seconds']))
    print('cpu during the install: {0:.2f} s its own + {1:.2f} s '
          'moto_server + {2:.2f} s store server and sampling = {3:.2f} s of '
          'the {4:.2f} s that {5} cores x wall offer'.format(
              install['cpu'], install['moto_cpu'], install['own_cpu'],
              install['cpu'] + install['moto_cpu'] + install['own_cpu'],
              cores * install['seconds'], cores))
    print('peak RSS of the install: {0:.1f} MB'.format(
        install['maxrss'] / 1e6))
    peak = install['peak']
    limit = (pending + 1) * part_size
    print('peak temporary disk of the install: {0:.1f} MiB in all'.format(
        peak['total'] / MIB))
    print('  bundle part files: {0:.1f} MiB (limit (pending parts {1} + 1) '
          'x part size = {2:.1f} MiB)'.format(peak['parts'] / MIB, pending,
                                              limit / MIB))
    print('  tarball: {0:.1f} MiB (without -d it streams from the store '
          'into the bundler; nothing of it should be on disk)'.format(
              peak['tarball'] / MIB))
    if peak['other']:
        print('  other files: {0:.1f} MiB'.format(peak['other'] / MIB))
    if install['leftovers']:
        print('left behind in its temporary directory: {0}'.format(
            install['leftovers']))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs of each; the best wall time is shown')
    parser.add_argument('--seed', type=int, default=20240501)
    parser.add_argument('--tmpdir', default=None,
                        help='where the store, keys and temporary files go')
    # Internal: a stage in a child process.
    parser.add_argument('--stage', choices=sorted(STAGES),
                        help=argparse.SUPPRESS)
    parser.add_argument('--config', help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.stage:
        with open(options.config) as config:
            result = STAGES[options.stage](json.load(config))
        print(json.dumps(result))
        return

    # A SIGTERM (a CI timeout, kill) becomes an exception like Ctrl-C's, so
    # the cleanup below still stops the servers and the running child.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(
        'terminated'))
    from tests.support.keys import KeyPair
    from tests.support.http import StoreServer
    from tests.support.moto import (REGION, MotoCloud, direct_cloud,
                                    find_moto_server)
    executable = find_moto_server()
    if not executable:
        raise SystemExit('moto_server not found: run scripts/setup (it '
                         'installs moto[server]), or set MOTO_SERVER')
    root = tempfile.mkdtemp(prefix='eustore-bench-install-',
                            dir=options.tmpdir)
    store = moto = None
    try:
        for directory in ('home', 'keys', 'store'):
            os.mkdir(os.path.join(root, directory))
        user = KeyPair(os.path.join(root, 'keys'), 'user')
        cloud_keys = KeyPair(os.path.join(root, 'keys'), 'cloud')
        config = {'size_mib': options.size_mib, 'seed': options.seed,
                  'store': os.path.join(root, 'store'),
                  'keys': {'user_cert': user.cert_path,
                           'user_key': user.key_path,
                           'cloud_cert': cloud_keys.cert_path}}
        print('generating a {0} MiB image tarball (seed {1}) ...'.format(
            options.size_mib, options.seed))
        sys.stdout.flush()
        generated = run_stage('generate', config, root)
        # Into the page cache, so the store serves every run from memory.
        with open(os.path.join(config['store'], 'images', TARBALL),
                  'rb') as warm:
            while warm.read(8 * MIB):
                pass

        store = StoreServer(config['store']).start()
        moto = MotoCloud(executable)
        config['store_url'] = store.url
        config['moto'] = {'url': moto.url, 'key_id': moto.key_id,
                          'secret_key': moto.secret_key}
        eucarc = {'EC2_URL': moto.url, 'S3_URL': moto.url,
                  'EUARE_URL': moto.url, 'AWS_DEFAULT_REGION': REGION,
                  'AWS_ACCESS_KEY_ID': moto.key_id,
                  'AWS_SECRET_ACCESS_KEY': moto.secret_key,
                  'EC2_CERT': user.cert_path,
                  'EC2_PRIVATE_KEY': user.key_path,
                  'EUCALYPTUS_CERT': cloud_keys.cert_path,
                  'EC2_USER_ID': ACCOUNT, 'EUSTORE_URL': store.url}
        cloud = direct_cloud(moto)
        # moto builds its EC2 backend (hundreds of stock AMIs) on the first
        # EC2 call, about a second and a half: not the install's to pay.
        cloud.images_named(IMAGE_NAME)

        # Contenders take turns, so a busy spell on a shared machine does
        # not fall on one of them only.  Upload follows bundle: it sends as
        # many bytes, in the same part sizes, as that bundle produced.
        runs = {'install': [], 'download': [], 'bundle': [], 'upload': []}
        for round_number in range(options.repeat):
            print('round {0} of {1} ...'.format(round_number + 1,
                                                options.repeat))
            sys.stdout.flush()
            runs['download'].append(run_stage('download', config, root))
            bundled = run_stage('bundle', config, root)
            runs['bundle'].append(bundled)
            runs['upload'].append(run_stage(
                'upload', dict(config, part_sizes=bundled['part_sizes']),
                root))
            # MotoCloud keeps its process private; only its pid is read.
            runs['install'].append(run_install(root, eucarc, cloud,
                                               moto._proc.pid))
        report(options, generated, runs, len(os.sched_getaffinity(0)))
    finally:
        if store is not None:
            store.stop()
        if moto is not None:
            moto.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
