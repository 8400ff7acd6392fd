# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
A stand-in for Eucalyptus' bootstrap service on loopback: it answers
DescribeServiceCertificates with the certificates it is given, as the
real service does (Eucalyptus cannot run here, and moto has no such
service), and records each request so that tests see what was asked and
how it was signed.
"""

from __future__ import absolute_import

import threading

from six.moves import BaseHTTPServer
from six.moves.urllib.parse import parse_qsl

from tests.support.http import LoopbackHTTPServer

_MEMBER = '''
    <member>
      <serviceType>{service}</serviceType>
      <certificateUsage>{usage}</certificateUsage>
      <certificateFormat>pem</certificateFormat>
      <certificateFingerprintDigest>SHA-256</certificateFingerprintDigest>
      <certificateFingerprint>00:11</certificateFingerprint>
      <certificate>{pem}</certificate>
    </member>'''
_ANSWER = '''<?xml version="1.0" encoding="UTF-8"?>
<DescribeServiceCertificatesResponseType xmlns="http://www.eucalyptus.com/ns/empyrean/2015-11-01/">
  <requestId>0f1e2d3c-aaaa-bbbb-cccc-000000000000</requestId>
  <serviceCertificates>{members}
  </serviceCertificates>
</DescribeServiceCertificatesResponseType>
'''  # noqa: E501 (the namespace)


class BootstrapServer(object):
    """
    ``certificates`` is a list of (service type, usage, PEM text); with
    ``status`` set, every request is answered with that error instead.
    ``requests`` holds (method, path, headers, form parameters).  With
    ``tls`` (a certificate file and its key file) it answers over https.
    """

    def __init__(self, certificates, status=None, tls=None):
        self.certificates = list(certificates)
        self.status = status
        self.requests = []
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = LoopbackHTTPServer.on_a_fresh_port(
            '127.0.0.1', Handler)
        scheme = self._httpd.serve_tls(tls)
        self.url = '{0}://127.0.0.1:{1}/services/Empyrean/'.format(
            scheme, self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever)
        self._thread.daemon = True
        self._thread.start()

    def answer(self):
        members = ''.join(_MEMBER.format(service=service, usage=usage,
                                         pem=pem.strip())
                          for service, usage, pem in self.certificates)
        return _ANSWER.format(members=members).encode('utf-8')

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPServer.BaseHTTPRequestHandler):
    owner = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length).decode('utf-8')
        owner = self.owner
        owner.requests.append((self.command, self.path,
                               dict((key.lower(), value) for key, value in
                                    self.headers.items()),
                               dict(parse_qsl(body))))
        if owner.status:
            answer = ('<ErrorResponse><Error><Code>AccessDenied</Code>'
                      '<Message>not for you</Message></Error>'
                      '</ErrorResponse>').encode('utf-8')
            status = owner.status
        else:
            answer, status = owner.answer(), 200
        self.send_response(status)
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST
