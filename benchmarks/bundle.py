#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Benchmark bundling an image tarball against the shell pipelines that do
the same work.

A seeded disk-like image (tests/support/images.py) is packed as a store
tarball (pigz -6); then, in the same run, each reading that tarball from
the page cache:

  ours LEVEL  BundleWriter at each named level, in a child process, as the
              install reads tarballs: inflate.open_gzip_reader -> tarfile
              'r|' -> BundleWriter (tar + SHA-1 of the tar stream + gzip +
              AES + parts with SHA-1 each; parts deleted as handed over)
  igzip -1    igzip -dc TARBALL | tar -xO | igzip -1 |
              openssl enc -aes-128-cbc -K .. -iv .. | split -b PART
  pigz -6     the same with pigz -6
  gzip -6     the same with gzip -6

The pipelines compute no digest at all; ours must, for the manifest.
Printed per contender: wall time of the whole process, image MB/s (10^6
bytes of image per second), CPU, bundle size, peak RSS of its largest
process (under /usr/bin/time; see harness.py), peak temporary disk, and
wall time / the igzip pipeline's; then our time bundling alone (after
interpreter start and imports).

    python3 benchmarks/bundle.py [--size-mib 512] [--repeat 1]
        [--levels fast,balanced,small] [--backend isal|zlib]
        [--python PYTHON] [--upload-delay SECONDS]

``--python`` runs our child on another interpreter (it runs on 2.7 too,
where zlib does the work); ``--backend zlib`` forces zlib on Python 3.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024
IMAGE_NAME = 'bench-image'
MEMBER = '{0}/{0}.img'.format(IMAGE_NAME)
PIPELINES = [('igzip -1', 'igzip -1'), ('pigz -6', 'pigz -6 -c'),
             ('gzip -6', 'gzip -6 -c')]
REFERENCE = 'igzip -1'


def run_child(options):
    """Bundle the tarball's image in this process; print a JSON result.
    Runs on Python 2.7 too, so it imports nothing of the harness."""
    sys.path.insert(0, REPO)
    import tarfile

    from eustore_plugin.bundle import BundleWriter, pgzip
    from eustore_plugin.images.inflate import (CHUNK_SIZE, TAR_BUFSIZE,
                                               open_gzip_reader)
    with open(options.credentials) as creds:
        paths = json.load(creds)
    compression = pgzip.deflater_for(options.level, options.backend)
    writer = BundleWriter(
        IMAGE_NAME + '.img', 'machine', 'x86_64', '123456789012',
        paths['user_cert'], paths['user_key'], paths['cloud_cert'],
        part_size=options.part_size, workdir=options.workdir,
        max_pending_parts=options.pending, threads=options.threads,
        compression=compression)
    started = time.time()
    parts = 0
    with open(options.tarball, 'rb') as tarball:
        reader = open_gzip_reader(tarball, backend=options.backend)
        try:
            with tarfile.open(fileobj=reader, mode='r|',
                              bufsize=TAR_BUFSIZE) as tar:
                for member in tar:
                    if member.name != MEMBER:
                        continue
                    for _ in writer.bundle(tar.extractfile(member),
                                           member.size):
                        parts += 1
                        if options.upload_delay:
                            time.sleep(options.upload_delay)  # slow upload
            # What the install does too: read to the end, trailer checked.
            while reader.read(CHUNK_SIZE):
                pass
        finally:
            reader.close()
    writer.manifest()
    print(json.dumps({'seconds': time.time() - started, 'parts': parts,
                      'bundled_size': writer.bundled_size,
                      'deflater': repr(writer.deflater)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mib', type=int, default=512)
    parser.add_argument('--levels', default=None,
                        help='comma-separated named levels (default: all)')
    parser.add_argument('--backend', choices=('isal', 'zlib'), default=None,
                        help='deflate/inflate backend of ours (default: '
                        'the best there is)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter for our child')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--part-size', type=int, default=10485760)
    parser.add_argument('--pending', type=int, default=2)
    parser.add_argument('--upload-delay', type=float, default=0.0,
                        help='seconds our consumer spends on each part, to '
                        'see back-pressure bound the part files on disk')
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs of each; the best wall time is shown')
    parser.add_argument('--seed', type=int, default=20240501)
    parser.add_argument('--tmpdir', default=None)
    parser.add_argument('--only-ours', action='store_true')
    # Internal: the bundling child.
    parser.add_argument('--child', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--level', help=argparse.SUPPRESS)
    parser.add_argument('--tarball', help=argparse.SUPPRESS)
    parser.add_argument('--credentials', help=argparse.SUPPRESS)
    parser.add_argument('--workdir', help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        run_child(options)
        return
    run_parent(options)


def run_parent(options):
    sys.path.insert(0, REPO)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness

    from eustore_plugin.bundle.pgzip import (COMPRESSION_LEVELS,
                                             DEFAULT_COMPRESSION)
    levels = options.levels.split(',') if options.levels else \
        list(COMPRESSION_LEVELS)
    for level in levels:
        if level not in COMPRESSION_LEVELS:
            raise SystemExit('--levels: {0} is not one of {1}'.format(
                level, ', '.join(COMPRESSION_LEVELS)))
    missing = [tool for tool in ('igzip', 'pigz', 'gzip', 'openssl', 'tar',
                                 'split') if not shutil.which(tool)]
    if missing and not options.only_ours:
        raise SystemExit('not on PATH: {0} (scripts/setup installs them; '
                         'or --only-ours)'.format(', '.join(missing)))
    root = tempfile.mkdtemp(prefix='eustore-bench-bundle-',
                            dir=options.tmpdir)
    try:
        size = options.size_mib * MIB
        image = os.path.join(root, 'image.img')
        tarball = os.path.join(root, IMAGE_NAME + '.tgz')
        print('generating a {0} MiB image (seed {1}) and its tarball ...'
              .format(options.size_mib, options.seed))
        sys.stdout.flush()
        harness.write_image(image, size, options.seed)
        compressor = harness.write_tarball(image, tarball, MEMBER,
                                           directory=IMAGE_NAME)
        os.remove(image)
        credentials = os.path.join(root, 'credentials.json')
        write_credentials(credentials, root)
        harness.warm(tarball)

        def ours(level):
            workdir = tempfile.mkdtemp(dir=root, prefix='parts-')
            output = os.path.join(root, 'child.out')
            command = [options.python, os.path.abspath(__file__), '--child',
                       '--level', level, '--tarball', tarball,
                       '--credentials', credentials, '--workdir', workdir,
                       '--part-size', str(options.part_size), '--pending',
                       str(options.pending), '--upload-delay',
                       str(options.upload_delay)]
            if options.threads:
                command += ['--threads', str(options.threads)]
            if options.backend:
                command += ['--backend', options.backend]
            watch = harness.DiskWatcher(workdir)
            with open(output, 'wb') as out:
                measured = harness.check(harness.run_measured(
                    command, env=harness.python_env(), stdout=out,
                    watch=watch), 'bundling at ' + level)
            with open(output, 'rb') as out:
                result = harness.child_json(out.read())
            shutil.rmtree(workdir)
            result.update(measured._asdict())
            return result

        contenders = [('ours ' + level, lambda level=level: ours(level))
                      for level in levels]
        if not options.only_ours:
            contenders += [
                (label, lambda command=command: harness.run_pipeline(
                    tarball, command, root, options.part_size))
                for label, command in PIPELINES]
        runs = harness.take_turns(contenders, options.repeat)
        results = [(label, harness.best(found))
                   for label, found in runs.items()]
        reference = dict(results).get(REFERENCE)
        deflaters = sorted(set(result['deflater'] for label, result in
                               results if 'deflater' in result))
        print('image {0} MiB in a {1:.1f} MiB tarball ({2}); part size {3}; '
              '{4} cores; best of {5}; ours on Python {6}: {7}; default '
              'level {8}'.format(
                  options.size_mib, os.path.getsize(tarball) / MIB,
                  compressor, options.part_size, harness.cores(),
                  options.repeat, python_version(options.python),
                  ', '.join(deflaters), DEFAULT_COMPRESSION))
        rows = []
        for label, result in results:
            rows.append([
                label, '{0:.2f}'.format(result['wall']),
                '{0:.1f}'.format(size / result['wall'] / 1e6),
                '{0:.2f}'.format(result['cpu']),
                '{0:.1f}'.format(result['bundled_size'] / MIB),
                '{0:.1f}'.format(result['maxrss'] / 1e6),
                '{0:.1f}'.format(result['peak_disk'] / MIB),
                '{0:.2f}'.format(result['wall'] / reference['wall'])
                if reference else '-'])
        harness.print_table(['', 'wall s', 'MB/s', 'cpu s', 'bundle MiB',
                             'peak RSS MB', 'peak disk MiB',
                             '/ ' + REFERENCE], rows)
        for label, result in results:
            if 'seconds' in result:
                print('{0}, bundling alone (after start-up and imports): '
                      '{1:.2f} s, {2:.1f} MB/s{3}'.format(
                          label, result['seconds'],
                          size / result['seconds'] / 1e6,
                          ', / {0}: {1:.2f}'.format(
                              REFERENCE, result['seconds'] /
                              reference['wall']) if reference else ''))
        if options.repeat > 1:
            print('every run, wall s: ' + '; '.join(
                '{0} {1}'.format(label, ' '.join(
                    '{0:.2f}'.format(run['wall']) for run in found))
                for label, found in runs.items()))
        print('our part files on disk are bounded by (pending {0} + 1) x '
              'part size = {1:.1f} MiB; the pipelines write the whole '
              'bundle'.format(options.pending, (options.pending + 1) *
                              options.part_size / MIB))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_credentials(path, directory):
    """A user key + certificate and a cloud certificate, as PEM files."""
    from tests.support.keys import KeyPair
    paths = {}
    for role in ('user', 'cloud'):
        pair = KeyPair(directory, role)
        paths[role + '_key'] = pair.key_path
        paths[role + '_cert'] = pair.cert_path
    with open(path, 'w') as out:
        json.dump(paths, out)


def python_version(python):
    import subprocess
    return subprocess.check_output([python, '-c', 'import platform; print('
                                    'platform.python_version())'],
                                   universal_newlines=True).strip()


if __name__ == '__main__':
    main()
