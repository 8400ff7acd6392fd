# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A real HTTP image store on loopback: serves a directory like a public bucket
(with Range requests and ETags, as S3 and Varnish answer them), and can be
told to misbehave for chosen paths so tests see the faults real stores have.
"""

from __future__ import absolute_import

import hashlib
import os.path
import re
import socket
import ssl
import subprocess
import sys
import threading

from six.moves import BaseHTTPServer, socketserver
import six.moves.urllib_parse as urlparse

_KEEP_ETAGS_FROM = 16 * 1024 * 1024


class StoreServer(object):
    """
    ``faults`` maps a URL path to a status code, or to a callable
    ``fault(handler, path)`` returning True when it answered the request
    itself.  ``requests`` records (method, path, headers) of every request.
    ``host`` is the address to listen on (loopback unless told).
    """

    def __init__(self, root, tls=None, host='127.0.0.1'):
        self.root = root
        self.faults = {}
        self.requests = []
        self._etags = {}
        server = self

        class Handler(_StoreHandler):
            store = server

        self._httpd = LoopbackHTTPServer.on_a_fresh_port(host, Handler)
        self.host = host
        self.port = self._httpd.server_address[1]
        scheme = self._httpd.serve_tls(tls)
        self.url = '{0}://{1}:{2}/'.format(scheme, host, self.port)
        self._thread = threading.Thread(target=self._httpd.serve_forever)
        self._thread.daemon = True

    def start(self):
        self._thread.start()
        return self

    def etag(self, filename):
        """
        An S3-like ETag (the MD5 of the content) for conditional GETs,
        hashed in pieces: a benchmark's tarball held whole would swell the
        process that every later child is forked from.  Those of large
        files are kept (tests rewrite only small ones), so that serving a
        large tarball does not start with hashing all of it.
        """
        status = os.stat(filename)
        key = (filename, status.st_size, status.st_mtime_ns
               if hasattr(status, 'st_mtime_ns') else status.st_mtime,
               status.st_ino)
        if key in self._etags:
            return self._etags[key]
        digest = hashlib.md5()
        with open(filename, 'rb') as source:
            for chunk in iter(lambda: source.read(1 << 20), b''):
                digest.update(chunk)
        etag = '"{0}"'.format(digest.hexdigest())
        if status.st_size >= _KEEP_ETAGS_FROM:
            self._etags[key] = etag
        return etag

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def paths_requested(self):
        return [path for _, path, _ in self.requests]


class LoopbackHTTPServer(socketserver.ThreadingMixIn,
                         BaseHTTPServer.HTTPServer):
    """A threaded HTTP server for the tests' loopback services."""

    daemon_threads = True
    allow_reuse_address = True
    # Every port a server of this process has listened on.
    _ports_taken = set()

    @classmethod
    def on_a_fresh_port(cls, host, handler):
        """
        A server on a port no earlier one in this process had.  The test
        session's one moto keeps what every install registered, tagged with
        the store's URL; a store on a port the system handed out again would
        be the same store to it, and a later test's install of the same
        entry would find itself "already installed" (CI saw it happen).
        """
        refused = []
        try:
            while True:
                server = cls((host, 0), handler)
                port = server.server_address[1]
                if port not in cls._ports_taken:
                    cls._ports_taken.add(port)
                    return server
                refused.append(server)  # held open, so asked for another
        finally:
            for server in refused:
                server.server_close()

    def serve_tls(self, tls):
        """With ``tls`` (a certificate file and its key file), answer over
        TLS from now on; the scheme served."""
        if not tls:
            return 'http'
        context = ssl.SSLContext(getattr(ssl, 'PROTOCOL_TLS_SERVER',
                                         ssl.PROTOCOL_SSLv23))
        context.load_cert_chain(*tls)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        return 'https'

    def handle_error(self, request, client_address):
        # Tests cut connections on purpose; a client hanging up is no error.
        if not isinstance(sys.exc_info()[1], (socket.error, IOError)):
            BaseHTTPServer.HTTPServer.handle_error(self, request,
                                                   client_address)


class _StoreHandler(BaseHTTPServer.BaseHTTPRequestHandler):
    store = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        path = urlparse.unquote(urlparse.urlparse(self.path).path)
        self.store.requests.append(('HEAD' if head else 'GET', path,
                                    dict(self.headers.items())))
        fault = self.store.faults.get(path)
        if callable(fault) and fault(self, path):
            return
        if isinstance(fault, int):
            return self.send_body(fault, b'<Error>injected</Error>')
        filename = os.path.join(self.store.root, path.lstrip('/'))
        if not os.path.isfile(filename):
            return self.send_body(404, b'<Error>NoSuchKey</Error>')
        size = os.path.getsize(filename)
        etag = self.store.etag(filename)
        if self.headers.get('If-None-Match') == etag:
            self.send_response(304)
            self.send_header('ETag', etag)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        start, end = 0, size - 1
        status = 200
        match = re.match(r'bytes=(\d+)-(\d*)$', self.headers.get('Range', ''))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2) or end), end)
            if start >= size:
                return self.send_body(416, b'')
            status = 206
        self.send_response(status)
        self.send_header('Content-Length', str(end - start + 1))
        self.send_header('Accept-Ranges', 'bytes')
        self.send_header('ETag', etag)
        if status == 206:
            self.send_header('Content-Range',
                             'bytes {0}-{1}/{2}'.format(start, end, size))
        self.end_headers()
        if head:
            return
        with open(filename, 'rb') as source:
            source.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = source.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    def send_body(self, status, body, content_type='application/xml'):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def self_signed_certificate(directory):
    """A key and a self-signed certificate for 127.0.0.1, made by openssl
    in ``directory``: (certificate file, key file)."""
    key = os.path.join(str(directory), 'key.pem')
    cert = os.path.join(str(directory), 'cert.pem')
    subprocess.check_call(
        ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
         '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
         '-keyout', key, '-out', cert, '-days', '1'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return cert, key


def header(headers, name):
    # Python 2's server records header names in lower case.
    return dict((key.lower(), val) for key, val in headers.items()).get(
        name.lower())


# ------------------------------------------------------------ faults to inject
# Answers a misbehaving store gives, for StoreServer.faults.

def serve(handler, data, limit=None, honor_range=True, status=None,
          content_range_start=None, extra_headers=()):
    """
    Answer like a store would (206 for a Range when honor_range, 416 for
    one that starts past the end), but stop after ``limit`` body bytes and
    drop the connection.
    """
    start = 0
    match = re.match(r'bytes=(\d+)-$', handler.headers.get('Range', ''))
    if match and honor_range:
        start = int(match.group(1))
        if start >= len(data):
            handler.send_response(416)
            handler.send_header('Content-Range', 'bytes */{0}'.format(
                len(data)))
            handler.send_header('Content-Length', '0')
            handler.end_headers()
            return True
    body = data[start:]
    handler.send_response(status or (206 if start else 200))
    handler.send_header('Content-Length', str(len(body)))
    if start or content_range_start is not None:
        first = start if content_range_start is None else content_range_start
        handler.send_header('Content-Range', 'bytes {0}-{1}/{2}'.format(
            first, len(data) - 1, len(data)))
    for name, value in extra_headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body[:limit] if limit is not None else body)
    handler.wfile.flush()
    if limit is not None:
        handler.close_connection = True
    return True


def cut_after(data, limit, times):
    calls = []

    def fault(handler, path):
        calls.append(path)
        if len(calls) > times:
            return False  # the server's own, intact answer
        return serve(handler, data, limit=limit)
    return fault


class ChangingFile(object):
    """
    A fault: the store answers with versions of a file (``versions``: their
    bytes), as ``script`` says answer by answer: (the version, the bytes
    after which the answer is cut, or None for all); after the script, the
    last version whole.  Answers carry the validator of the version they
    hold (``validator``: 'ETag', 'Last-Modified', or None for neither) and
    treat Range and If-Range as S3 does: a Range whose If-Range names
    another version gets the whole current file (200); one past the end of
    the file gets 416.  With
    ``ignores_if_range``, as Ceph RGW 16 does, a Range gets its bytes of
    the current file (206) whatever If-Range says.
    """

    VALIDATORS = {
        'ETag': lambda data, version: '"{0}"'.format(
            hashlib.md5(data).hexdigest()),
        'Last-Modified': lambda data, version: (
            '{0} Dec 2026 10:00:00 GMT'.format(
                ('Tue, 01', 'Wed, 02', 'Thu, 03', 'Fri, 04')[version])),
    }

    def __init__(self, versions, script, validator='ETag',
                 ignores_if_range=False):
        self.versions = [(data, None) for data in versions]
        if validator is not None:
            make = self.VALIDATORS[validator]
            self.versions = [(data, make(data, version)) for version, data
                             in enumerate(versions)]
        self.script = list(script)
        self.validator = validator
        self.ignores_if_range = ignores_if_range
        self.answers = 0

    def validator_of(self, version):
        return self.versions[version][1]

    def __call__(self, handler, path):
        if self.answers < len(self.script):
            version, cut = self.script[self.answers]
        else:
            version, cut = len(self.versions) - 1, None
        self.answers += 1
        data, tag = self.versions[version]
        if_range = handler.headers.get('If-Range')
        return serve(handler, data, limit=cut,
                     honor_range=if_range is None or if_range == tag or
                     self.ignores_if_range,
                     extra_headers=[(self.validator, tag)] if tag else [])


class ReplacedFile(ChangingFile):
    """The file replaced on the server (by ``new``) as soon as its first
    answer (``old``) has been cut after ``cut`` bytes."""

    def __init__(self, old, new, cut, validator='ETag',
                 ignores_if_range=False):
        ChangingFile.__init__(self, [old, new], [(0, cut)], validator,
                              ignores_if_range)
