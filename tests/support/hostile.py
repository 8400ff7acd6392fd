# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A hostile (or merely broken) image store, for tests/test_hostile.py and
docs/threat-model.md: a real HTTP server (tests/support/http.py's
StoreServer) told, path by path, to answer the way an attacker's store or a
broken one would -- catalogs naming local files and services, redirects to
them, bodies longer than announced or never ending, gzip bombs, a byte
every so often, an unsolicited 304, reason phrases carrying terminal escape
sequences -- and the documents and tarballs such a store serves: xz disks
that inflate a thousandfold, simplestreams documents with attributes for
every item to inherit, tar.gz files with a header of hundreds of MiB,
virt-builder indexes.
"""

from __future__ import absolute_import

import collections
import gzip
import hashlib
import io
import json
import os
import os.path
import socket
import subprocess
import tarfile
import threading
import zlib

from tests.support.commands import command_argv
from tests.support.http import StoreServer

# What a terminal does with these: set the window title, clear the screen,
# go back to the start of the line (to overwrite it), ring the bell.
TITLE = u'\x1b]0;pwned\x07'
CLEAR = u'\x1b[2J'
RETURN = u'\r'
RAW_CONTROLS = (u'\x1b', u'\x07', u'\r', u'\x9b')


def outside_address():
    """
    An IPv4 address of this machine that is not a loopback one (a store
    "elsewhere" for the URL policy), or None when it has none.
    """
    address = None
    # No packet is sent: connecting a UDP socket only picks a route (to
    # documentation addresses, which nothing answers anyway).
    for target in ('203.0.113.1', '10.255.255.254'):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.connect((target, 9))
            address = sock.getsockname()[0]
            break
        except (socket.error, OSError):
            continue
        finally:
            sock.close()
    if address is None or address.startswith('127.') or \
            address == '0.0.0.0':
        return None
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((address, 0))
    except (socket.error, OSError):
        return None
    finally:
        probe.close()
    return address


class HostileStore(StoreServer):
    """
    A StoreServer with answers of an attacker's choosing.  Each method sets
    the answer for one URL path; ``sent[path]`` counts the body bytes the
    server managed to send there (a client that stops reading stops it).
    """

    def __init__(self, root, host='127.0.0.1'):
        StoreServer.__init__(self, root, host=host)
        self.sent = {}
        self.stopping = threading.Event()

    def stop(self):
        self.stopping.set()
        StoreServer.stop(self)

    def _count(self, path, size):
        self.sent[path] = self.sent.get(path, 0) + size

    def document(self, path, body, status=200, reason=None, headers=()):
        """Answer ``body`` (bytes) with ``status`` and its reason phrase."""
        def fault(handler, asked):
            handler.send_response(status, reason)
            handler.send_header('Content-Length', str(len(body)))
            for name, value in headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
            self._count(asked, len(body))
            return True
        self.faults[path] = fault

    def json(self, path, data):
        self.document(path, json.dumps(data).encode('utf-8'))

    def redirect(self, path, location, status=302):
        self.document(path, b'', status=status,
                      headers=[('Location', location)])

    def not_modified(self, path):
        """A 304 whatever the request asked (none had a copy to compare)."""
        def fault(handler, asked):
            handler.send_response(304)
            handler.send_header('ETag', '"unsolicited"')
            handler.end_headers()
            return True
        self.faults[path] = fault

    def chunked(self, path, data, endless=False, cap=64 * 1024 * 1024):
        """
        ``data`` with Transfer-Encoding: chunked and no Content-Length;
        ``endless``: again and again, until the client hangs up (or ``cap``
        bytes went, so that a client that never stops is seen, not waited
        for).
        """
        def fault(handler, asked):
            handler.send_response(200)
            handler.send_header('Transfer-Encoding', 'chunked')
            handler.end_headers()
            handler.close_connection = True
            try:
                while True:
                    handler.wfile.write('{0:x}\r\n'.format(len(data))
                                        .encode('ascii') + data + b'\r\n')
                    handler.wfile.flush()
                    self._count(asked, len(data))
                    if not endless or self.sent[asked] >= cap or \
                            self.stopping.is_set():
                        break
                if not endless:
                    handler.wfile.write(b'0\r\n\r\n')
            except (socket.error, IOError, OSError):
                pass  # the client stopped reading: what was wanted
            return True
        self.faults[path] = fault

    def gzip_encoded(self, path, encoded):
        """``encoded`` (gzip data) with Content-Encoding: gzip."""
        self.document(path, encoded, headers=[
            ('Content-Encoding', 'gzip'),
            ('Content-Type', 'application/json')])

    def drip(self, path, data, interval, announce=True, piece=1,
             chunked=False):
        """
        ``data`` ``piece`` bytes every ``interval`` seconds (with its whole
        length announced unless told not to; with ``chunked``, each piece a
        chunk of Transfer-Encoding: chunked, so that a client sees each as
        it comes), until done, the client hangs up or the server stops.
        """
        def fault(handler, asked):
            handler.send_response(200)
            if chunked:
                handler.send_header('Transfer-Encoding', 'chunked')
            elif announce:
                handler.send_header('Content-Length', str(len(data)))
            handler.end_headers()
            handler.close_connection = True
            try:
                for position in range(0, len(data), piece):
                    sent = data[position:position + piece]
                    handler.wfile.write(
                        '{0:x}\r\n'.format(len(sent)).encode('ascii') +
                        sent + b'\r\n' if chunked else sent)
                    handler.wfile.flush()
                    self._count(asked, len(sent))
                    if self.stopping.wait(interval):
                        break
                else:
                    if chunked:
                        handler.wfile.write(b'0\r\n\r\n')
            except (socket.error, IOError, OSError):
                pass
            return True
        self.faults[path] = fault

    def announce(self, path, size, data=b''):
        """A 200 announcing ``size`` bytes (Content-Length) that sends
        ``data`` and then nothing more, until the client hangs up."""
        def fault(handler, asked):
            handler.send_response(200)
            handler.send_header('Content-Length', str(size))
            handler.end_headers()
            handler.close_connection = True
            try:
                handler.wfile.write(data)
                handler.wfile.flush()
                self._count(asked, len(data))
                self.stopping.wait(120)
            except (socket.error, IOError, OSError):
                pass
            return True
        self.faults[path] = fault

    def hold(self, path, data, held=1024):
        """
        ``data`` announced whole, all but its last ``held`` bytes sent, then
        nothing until the server stops: a transfer stalled mid-body.
        ``arrived`` is set once the bytes are on their way.
        """
        arrived = threading.Event()
        # The ETag the server gives the file itself, for If-Range.
        etag = '"{0}"'.format(hashlib.md5(data).hexdigest())

        def fault(handler, asked):
            handler.send_response(200)
            handler.send_header('Content-Length', str(len(data)))
            handler.send_header('ETag', etag)
            handler.end_headers()
            handler.close_connection = True
            try:
                handler.wfile.write(data[:-held])
                handler.wfile.flush()
                self._count(asked, len(data) - held)
            except (socket.error, IOError, OSError):
                return True
            arrived.set()
            self.stopping.wait(120)
            return True
        self.faults[path] = fault
        return arrived


# ---------------------------------------------------------------- documents

def gzip_bomb(decoded_size):
    """
    A JSON catalog of ``decoded_size`` bytes (nearly all padding), gzipped:
    about a thousandth of that on the wire.  Made piecewise, so the test
    never holds the decoded document either.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head, tail = b'{"images": [], "padding": "', b'"}'
    pieces = [compressor.compress(head)]
    block = b' ' * (1 << 20)
    left = decoded_size - len(head) - len(tail)
    while left > 0:
        piece = block[:min(left, len(block))]
        pieces.append(compressor.compress(piece))
        left -= len(piece)
    pieces.append(compressor.compress(tail))
    pieces.append(compressor.flush())
    return b''.join(pieces)


def deep_json(depth):
    """A catalog whose one entry nests ``depth`` lists deep."""
    return (b'{"images": [' + b'[' * depth + b']' * depth + b']}')


def entry(name, url, data=None, **fields):
    """A catalog entry; with ``data`` (the tarball's bytes), its size and
    SHA-256 as a publisher gives them."""
    image = {'name': name, 'url': url, 'os': 'linux',
             'architecture': 'x86_64', 'description': 'a test image',
             'version': '1', 'virtualization_type': 'hvm'}
    if data is not None:
        image.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    image.update(fields)
    return dict((key, value) for key, value in image.items()
                if value is not None)


def write_catalog(store_dir, images, name='catalog', **top):
    """Write ``{"images": images, **top}`` as the store's catalog; returns
    its bytes."""
    data = dict(top, images=images)
    body = json.dumps(data, indent=2, sort_keys=True).encode('utf-8')
    with open(os.path.join(str(store_dir), name), 'wb') as out:
        out.write(body)
    return body


def write_signed_catalog(store_dir, key, images, serial, generated=None,
                         valid_until=None):
    """
    A catalog stamped as eustore-publish-image stamps them (``serial``,
    ``generated``, ``valid-until``: UTC text) and signed with the test
    ``key`` (catalog.asc beside it); returns the catalog's bytes.
    """
    top = {'serial': serial,
           'generated': generated or '2026-01-01T00:00:00Z'}
    if valid_until is not None:
        top['valid-until'] = valid_until
    body = write_catalog(store_dir, images, **top)
    with open(os.path.join(str(store_dir), 'catalog.asc'), 'wb') as out:
        out.write(key.sign(body))
    return body


def xz_of_zeros(path, size):
    """Write to ``path`` the xz (xz(1), -6) of ``size`` zero bytes, fed
    piecewise so the test never holds them; returns the file's bytes
    (about size / 7000 of them)."""
    with open(path, 'wb') as out:
        process = subprocess.Popen(['xz', '-c', '-6'], stdin=subprocess.PIPE,
                                   stdout=out)
        block = b'\0' * (1 << 20)
        left = size
        while left > 0:
            process.stdin.write(block[:min(left, len(block))])
            left -= min(left, len(block))
        process.stdin.close()
        assert process.wait() == 0
    with open(path, 'rb') as written:
        return written.read()


def virt_builder_index(sections):
    """A virt-builder index's text (bytes) of ``sections``: (os-version
    id, [(key, value)...]) pairs."""
    lines = [u'# a virt-builder repository']
    for name, fields in sections:
        lines.append(u'[{0}]'.format(name))
        lines.extend(u'{0}={1}'.format(key, value) for key, value in fields)
        lines.append(u'')
    return u'\n'.join(lines).encode('utf-8')


def template(name, data, **fields):
    """One section of a virt-builder index for the xz file ``name``
    holding ``data``, its checksum and compressed_size given; ``fields``
    add or change (None: leave out) others."""
    given = [('name', name), ('osinfo', 'fedora39'), ('arch', 'x86_64'),
             ('file', name + '.xz'),
             ('checksum[sha512]', hashlib.sha512(data).hexdigest()),
             ('format', 'raw'), ('compressed_size', len(data)),
             ('revision', 1)]
    given = [(key, fields.pop(key, value)) for key, value in given]
    given.extend(sorted(fields.items()))
    return name, [(key, value) for key, value in given if value is not None]


def products_bomb(count):
    """
    A simplestreams products file of ``count`` attributes at its top and
    ``count`` items in one version: every item inherits every attribute,
    so a reader that copies them down holds count * count of them.  About
    50 bytes a count.
    """
    top = collections.OrderedDict([
        ('content_id', 'com.example:bomb'), ('datatype', 'image-downloads'),
        ('format', 'products:1.0'),
        ('updated', 'Fri, 15 Mar 2024 12:00:00 +0000')])
    for number in range(count):
        top['attribute{0}'.format(number)] = number
    items = collections.OrderedDict(
        ('item{0}'.format(number), {'ftype': 'disk1.img',
                                    'path': 'bomb/disk{0}.img'.format(number)})
        for number in range(count))
    top['products'] = {'com.example:bomb:amd64': {
        'arch': 'amd64', 'versions': {'20240315': {'items': items}}}}
    return json.dumps(top, separators=(',', ':')).encode('utf-8')


# ----------------------------------------------------------------- tarballs

def file_member(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1326553503
    return info, data


def link_member(name, target, hard=False):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    info.mtime = 1326553503
    return info, None


def device_member(name, major=1, minor=3):
    """A character device (1, 3 is /dev/null's numbers)."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = major, minor
    info.mtime = 1326553503
    return info, None


def pax_bomb(path, header_size, disk):
    """
    A tar.gz whose first member has a pax header of ``header_size`` bytes
    (zeros: a few hundred KiB on the wire), then the disk image ``disk``;
    written piecewise, so the test never holds the header.
    """
    info = tarfile.TarInfo('././@PaxHeader')
    info.type = tarfile.XHDTYPE
    info.size = header_size
    info.mtime = 1326553503
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    disk_info, _ = file_member('bomb/bomb.img', disk)
    with open(path, 'wb') as out:
        out.write(compressor.compress(info.tobuf(tarfile.USTAR_FORMAT)))
        block = b'\0' * (1 << 20)
        left = header_size + (-header_size % tarfile.BLOCKSIZE)
        while left > 0:
            out.write(compressor.compress(block[:min(left, len(block))]))
            left -= min(left, len(block))
        out.write(compressor.compress(
            disk_info.tobuf(tarfile.GNU_FORMAT) + disk +
            b'\0' * (-len(disk) % tarfile.BLOCKSIZE) +
            b'\0' * (2 * tarfile.BLOCKSIZE)))
        out.write(compressor.flush())
    with open(path, 'rb') as written:
        return written.read()


def write_tarball(path, members):
    """A tar.gz of ``members`` ((TarInfo, bytes or None) pairs, in order);
    returns its bytes."""
    with open(path, 'wb') as raw:
        with gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode='w',
                              format=tarfile.GNU_FORMAT) as tar:
                for info, data in members:
                    tar.addfile(info, io.BytesIO(data)
                                if data is not None else None)
    with open(path, 'rb') as written:
        return written.read()


# ------------------------------------------------------------ running one

class RunningCommand(object):
    """
    A command started in a process of its own whose stderr is read as it
    comes, so a test can wait for a line (``wait_for``) before doing the
    next thing to it (a signal, releasing a held request).
    """

    def __init__(self, command, args, env, **popen_args):
        self.proc = subprocess.Popen(
            command_argv(command) + list(args), env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, **popen_args)
        self.proc.stdin.close()
        self._err = []
        self._out = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr,
                                                      self._err)),
            threading.Thread(target=self._read, args=(self.proc.stdout,
                                                      self._out))]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    def _read(self, stream, into):
        for line in iter(stream.readline, b''):
            with self._changed:
                into.append(line.decode('utf-8', 'replace'))
                self._changed.notify_all()
        with self._changed:
            into.append(None)
            self._changed.notify_all()

    @property
    def stderr(self):
        with self._changed:
            return u''.join(line for line in self._err if line is not None)

    @property
    def stdout(self):
        with self._changed:
            return u''.join(line for line in self._out if line is not None)

    def wait_for(self, text, timeout=60):
        """Wait until ``text`` is in stderr; AssertionError if it never
        comes (the process ended, or ``timeout`` passed: a hung test)."""
        with self._changed:
            waited = 0.0
            while text not in u''.join(line for line in self._err
                                       if line is not None):
                if None in self._err or waited >= timeout:
                    raise AssertionError('{0!r} never came; stderr: {1!r}'
                                         .format(text, self.stderr))
                self._changed.wait(0.5)
                waited += 0.5

    def signal(self, signum):
        self.proc.send_signal(signum)

    def finish(self, timeout=120):
        """Wait for the end (AssertionError after ``timeout``: hung);
        returns the exit status."""
        for reader in self._readers:
            reader.join(timeout)
            if reader.is_alive():
                self.proc.kill()
                raise AssertionError('the command did not end; stderr: '
                                     '{0!r}'.format(self.stderr))
        return self.proc.wait()
