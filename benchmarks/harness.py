# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What the benchmarks share: measured child processes (wall time, CPU, peak
RSS, peak temporary disk), seeded images and tarballs, shell pipelines,
and the table they print.

Peak RSS is what GNU time's ``%M`` says of the command, as a user's
``/usr/bin/time`` would: each command is run under ``/usr/bin/time`` (or,
where there is none, under a small Python process of this file's).  The
``ru_maxrss`` that ``wait4`` gives for a direct child is not that: Linux
starts a process's peak from the memory it had when it was forked and
keeps it across ``exec`` (even ``vfork``, which Python's subprocess uses,
counts the parent's pages), so a child of a benchmark that holds hundreds
of MB reports those hundreds whatever it used itself.  Forked from a
process that is small when it forks, the command's peak is its own.

Python 3 only; the bundle benchmark's child also runs on 2.7 and imports
nothing of this.
"""

from __future__ import absolute_import, division, print_function

import argparse
import binascii
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
MIB = 1024 * 1024
GIB = 1024 * MIB
GNU_TIME = '/usr/bin/time'
# Pinned, like the gzip header's, so that a seed always gives the same
# tarball.
MTIME = 1400000000


class Measured(collections.namedtuple(
        'Measured', 'returncode wall cpu maxrss peak_disk maxrss_wait4')):
    """One child's run: exit status, wall and CPU seconds (its children's
    included), peak RSS in bytes of its largest process, and the peak
    bytes of files under the watched directory (None if none was).
    ``maxrss_wait4`` is what wait4 said of the measuring process, forked
    from this one: this process's own peak, if larger (module docstring)."""
    __slots__ = ()


def _gnu_time():
    try:
        return subprocess.call([GNU_TIME, '-f', '%M', 'true'],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) == 0
    except OSError:
        return False


_HAVE_GNU_TIME = None


def run_measured(argv, env=None, stdout=None, stderr=None, watch=None,
                 on_start=None):
    """
    Run ``argv`` to its end, measured (see the module docstring for why
    under a small process).  ``watch``: a :class:`DiskWatcher` to run
    meanwhile; ``on_start(pid)`` is told the pid of the measuring process.
    """
    global _HAVE_GNU_TIME
    if _HAVE_GNU_TIME is None:
        _HAVE_GNU_TIME = _gnu_time()
    handle, report = tempfile.mkstemp(prefix='bench-rusage-')
    os.close(handle)
    if _HAVE_GNU_TIME:
        wrapped = [GNU_TIME, '-q', '-f', '%U %S %M', '-o', report] + \
            list(argv)
    else:
        wrapped = [sys.executable, os.path.abspath(__file__), '--rusage',
                   report, '--'] + list(argv)
    try:
        started = time.time()
        child = subprocess.Popen(wrapped, env=env, stdout=stdout,
                                 stderr=stderr, stdin=subprocess.DEVNULL)
        if watch is not None:
            watch.start(started)
        if on_start is not None:
            on_start(child.pid)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            if watch is not None:
                watch.stop()
        wall = time.time() - started
        with open(report) as numbers:
            lines = [line for line in numbers.read().splitlines()
                     if line.strip()]
    finally:
        os.remove(report)
    # GNU time writes "Command exited with non-zero status N" first then.
    user, system, maxrss_kib = lines[-1].split()
    returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else \
        -os.WTERMSIG(status)
    # ru_maxrss and %M are in KiB on Linux.
    return Measured(returncode, wall, float(user) + float(system),
                    int(maxrss_kib) * 1024,
                    watch.peak['total'] if watch is not None else None,
                    usage.ru_maxrss * 1024)


def _rusage_main(report, argv):
    """What run_measured runs where there is no GNU time."""
    child = subprocess.Popen(argv)
    _, status, usage = os.wait4(child.pid, 0)
    with open(report, 'w') as out:
        out.write('{0} {1} {2}\n'.format(usage.ru_utime, usage.ru_stime,
                                         usage.ru_maxrss))
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else \
        128 + os.WTERMSIG(status)


def process_cpu(pid):
    """CPU seconds a running process has used so far."""
    with open('/proc/{0}/stat'.format(pid)) as stat:
        # Fields 14 and 15 (utime, stime), counted after the command name,
        # which may itself hold spaces.
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def moto_server():
    """moto_server's path, or SystemExit saying how to get it."""
    from tests.support.moto import find_moto_server
    executable = find_moto_server()
    if not executable:
        raise SystemExit('moto_server not found: run scripts/setup (it '
                         'installs moto[server]), or set MOTO_SERVER')
    return executable


def stage_arguments(parser):
    """The hidden options a benchmark's children are started with."""
    parser.add_argument('--stage', help=argparse.SUPPRESS)
    parser.add_argument('--config', help=argparse.SUPPRESS)


def run_asked_stage(options, stages):
    """In a child run_stage started: run its stage (one of ``stages``,
    {name: function(config) -> dict}), print what it returns as JSON,
    and return True; elsewhere False."""
    if not options.stage:
        return False
    with open(options.config) as config:
        print(json.dumps(stages[options.stage](json.load(config))))
    return True


def run_stage(script, name, config, root, env, before=None):
    """
    Stage ``name`` of the benchmark ``script`` in a child of its own,
    measured: ``config`` (with a ``workdir`` of the stage's own, also its
    TMPDIR) is handed over in a file; ``before()``, when given, is called
    just before it starts.  Returns (the JSON it printed last, Measured).
    """
    workdir = tempfile.mkdtemp(dir=root, prefix=name + '-')
    config_path = os.path.join(workdir, 'config.json')
    with open(config_path, 'w') as out:
        json.dump(dict(config, workdir=workdir), out)
    output = os.path.join(root, name + '.out')
    if before is not None:
        before()
    with open(output, 'wb') as out:
        measured = check(run_measured(
            [sys.executable, os.path.abspath(script), '--stage', name,
             '--config', config_path], env=dict(env, TMPDIR=workdir),
            stdout=out), 'the {0} stage'.format(name))
    shutil.rmtree(workdir)
    with open(output, 'rb') as result:
        return child_json(result.read()), measured


def run_bench(make, run):
    """``run(make())``, then the bench's close(), also after a SIGTERM (a
    CI timeout, kill), which becomes an exception like Ctrl-C's, so that
    the servers and the running child are still stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(
        'terminated'))
    bench = make()
    try:
        run(bench)
    finally:
        bench.close()


def check(measured, what):
    if measured.returncode != 0:
        raise SystemExit('{0} failed (exit {1})'.format(what,
                                                        measured.returncode))
    return measured


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


def files_under(root):
    return list(_files_under(root))


def directory_bytes(root):
    return sum(size for _, size in _files_under(root))


class DiskWatcher(object):
    """
    Samples the files under ``root`` in a thread (every 5 ms, and once
    more at the end): ``peak[kind]`` is the most bytes seen at once of
    each kind ``classify(name)`` names, and ``peak['total']`` of all;
    ``seen[kind]`` the (first, last) time a file of that kind was there,
    in seconds since the run started.
    """

    def __init__(self, root, classify=None, interval=0.005):
        self.root = root
        self.classify = classify or (lambda name: 'files')
        self.interval = interval
        self.peak = collections.defaultdict(int)
        self.seen = {}
        self._stop = threading.Event()
        self._thread = None
        self._started = None

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
        sizes = collections.defaultdict(int)
        for name, size in _files_under(self.root):
            sizes[self.classify(name)] += size
        for kind, size in sizes.items():
            self.peak[kind] = max(self.peak[kind], size)
            first, _ = self.seen.get(kind, (now, now))
            self.seen[kind] = (first, now)
        self.peak['total'] = max(self.peak['total'], sum(sizes.values()))


def python_env(**extra):
    """This environment, with the checkout first on the path."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO] + [part for part in env.get('PYTHONPATH', '').split(
            os.pathsep) if part])
    env.update(extra)
    return env


def write_image(path, size, seed):
    """A seeded disk-like image (tests/support/images.py), written by a
    child so that this process does not grow."""
    subprocess.check_call([
        sys.executable, '-c',
        'import sys; from tests.support.images import write_disk_image; '
        'write_disk_image(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))',
        path, str(size), str(seed)], env=python_env())


def write_tarball(image, tarball, member, directory=None):
    """
    ``image`` packed as ``member`` of ``tarball`` (after a ``directory``
    entry, as store tarballs have one), gzip -6 by pigz when there is one
    (else Python's gzip), with pinned times so a seed gives the same bytes.
    """
    pigz = shutil.which('pigz')
    with open(tarball, 'wb') as out:
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
            if directory:
                top = tarfile.TarInfo(directory)
                top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, MTIME
                tar.addfile(top)
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = (os.path.getsize(image), 0o644,
                                                MTIME)
            with open(image, 'rb') as data:
                tar.addfile(info, data)
        stream.close()
        if compressor is not None and compressor.wait() != 0:
            raise SystemExit('pigz failed')
    return 'pigz -6' if pigz else 'python gzip -6'


def warm(path):
    """Read a file into the page cache, so every contender reads memory."""
    with open(path, 'rb') as data:
        while data.read(8 * MIB):
            pass


def bundle_pipeline(tarball, compress, outdir, part_size):
    """The shell pipeline that bundles the image of a tarball with
    ``compress`` (a command reading stdin), as fast as tools go."""
    return shell(
        'igzip -dc {tarball} | tar -xO | {compress} | '
        'openssl enc -aes-128-cbc -K {key} -iv {iv} | '
        'split -b {part} - {outdir}/image.part.'.format(
            tarball=tarball, compress=compress, key=random_hex(),
            iv=random_hex(), part=part_size, outdir=outdir))


def run_pipeline(tarball, compress, workdir, part_size):
    """Run bundle_pipeline into a directory of its own; its Measured as a
    dict, with ``bundled_size``."""
    outdir = tempfile.mkdtemp(dir=workdir, prefix='split-')
    watch = DiskWatcher(outdir)
    try:
        measured = check(run_measured(bundle_pipeline(
            tarball, compress, outdir, part_size), watch=watch), compress)
        result = measured._asdict()
        result['bundled_size'] = directory_bytes(outdir)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return result


def shell(script):
    """bash running ``script`` with every stage's failure counted."""
    return ['bash', '-c', 'set -e -o pipefail; ' + script]


def random_hex(count=16):
    return binascii.hexlify(os.urandom(count)).decode('ascii')


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def take_turns(contenders, repeat):
    """
    Run each (label, function) ``repeat`` times, taking turns so that a
    busy spell on a shared machine does not fall on one of them only;
    returns {label: [result, ...]} in the contenders' order.
    """
    runs = collections.OrderedDict((label, []) for label, _ in contenders)
    for _ in range(repeat):
        for label, function in contenders:
            runs[label].append(function())
    return runs


def best(results, key='wall'):
    return min(results, key=lambda result: result[key])


def print_table(headers, rows):
    """Columns aligned: text left, numbers right."""
    cells = [[str(cell) for cell in row] for row in [headers] + list(rows)]
    widths = [max(len(row[column]) for row in cells)
              for column in range(len(headers))]
    for row in cells:
        print('  '.join(cell.ljust(width) if column == 0 else
                        cell.rjust(width)
                        for column, (cell, width) in
                        enumerate(zip(row, widths))).rstrip())


def child_json(output):
    """The JSON a child printed last on its stdout."""
    lines = [line for line in output.decode('utf-8').splitlines()
             if line.startswith('{')]
    return json.loads(lines[-1])


class LinkProxy(object):
    """
    A loopback TCP proxy in front of ``host:port`` that makes a slow link
    of it: each HTTP request (the first bytes from the client after an
    answer, or on a new connection) waits ``latency`` seconds before it is
    passed on, and each connection carries at most ``rate`` bytes/s in
    each direction.  Bytes are passed on as they are, so signatures over
    the Host header still hold.  ``requests``, ``sent`` and ``received``
    count what went through.
    """

    def __init__(self, host, port, latency=0.04, rate=25e6):
        self.target = (host, port)
        self.latency = latency
        self.rate = rate
        self.requests = 0
        self.sent = 0
        self.received = 0
        self._lock = threading.Lock()
        self._sockets = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(('127.0.0.1', 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = 'http://127.0.0.1:{0}/'.format(self.port)
        self._stopping = False
        thread = threading.Thread(target=self._accept, name='link-accept')
        thread.daemon = True
        thread.start()

    def _accept(self):
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            # Nagle's wait for an ACK would add a delayed ACK's 40 ms to
            # requests sent in two writes (headers, then body).
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, upstream))
            # Shared by the two directions: whether an answer came since
            # the client last spoke, so its next bytes are a new request.
            state = {'answered': True}
            for source, sink, up in ((client, upstream, True),
                                     (upstream, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(source, sink, up, state),
                    name='link-pump')
                thread.daemon = True
                thread.start()

    def _pump(self, source, sink, up, state):
        free_at = time.time()
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if up and state['answered']:
                    state['answered'] = False
                    with self._lock:
                        self.requests += 1
                    time.sleep(self.latency)
                    free_at = max(free_at, time.time())
                elif not up:
                    state['answered'] = True
                # Paced: this chunk may leave when the link has carried
                # the previous ones at ``rate``.
                now = time.time()
                start = max(now, free_at)
                if start > now:
                    time.sleep(start - now)
                sink.sendall(data)
                free_at = start + len(data) / self.rate
                with self._lock:
                    if up:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def stop(self):
        self._stopping = True
        self._listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass


if __name__ == '__main__' and sys.argv[1:2] == ['--rusage']:
    sys.exit(_rusage_main(sys.argv[2], sys.argv[4:]))
