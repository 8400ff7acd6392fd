# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Make requestbuilder 0.7.1 work on Python 3.

requestbuilder 0.7.1 is the final release and its Python 3 port was never
finished.  The design card asks us to build on it, so instead of scattering
workarounds through the plugin, this one module replaces exactly the pieces
that break, and nothing else.  Each replacement is a function of ours named
after what it fixes; ``install()`` wires them in once and is idempotent.

What breaks on Python 3, and what we do about it:

==========================================  ================================
requestbuilder 0.7.1                        fix
==========================================  ================================
command._rewrap_description: dict
  .iteritems() and xrange, so every
  command with a DESCRIPTION fails to
  build its parser                          our own paragraph re-wrapper
auth.aws signers: .iteritems(), str keys
  to hmac.new(), str to hashlib, bytes
  from b64encode put into headers           our HMAC-V1, query V2 and V4
                                            signing methods, text in and
                                            text out, bytes only at the
                                            hashing boundary
service.send_request, request.flatten_
  params: the Python 2 builtin ``file``     the module's ``file`` name bound
                                            to io.IOBase
service: collections.Mapping (gone in
  3.10)                                     the module's ``collections``
                                            bound to one that has Mapping
request._IteratorFileObjAdapter: joins
  bytes chunks with a str                   a bytes-joining read()
config: SafeConfigParser (gone in 3.12)     the alias Python 3.2-3.11 had
service: ``import cgi`` (gone in 3.13)      the legacy-cgi distribution,
                                            declared in setup.py
==========================================  ================================

Some bugs bite on Python 2.7 as well (and so euca2ools too), and are fixed
on every Python: a 500 or 503 was retried with an exhausted file body (see
``_rewinding_send_request``), and the signers, which replace requestbuilder's
on every Python (tests/test_compat.py checks them
against botocore byte for byte on both): HmacV1 signed ``?acl`` as ``acl=``
and appended the sub-resource list once per parameter; query V2 failed on
non-ASCII values; V4 hashed a seekable body through ``req.data`` (prepared
requests have none), encoded S3 keys twice, and signed queries decoded on
Python 2.  Ours sign S3 paths and queries as AWS specifies (urlkeys.py):
decoded once and encoded again, every byte but the unreserved ones, so a
key with ``+``, ``(`` or ``@`` is signed as servers that follow AWS (Ceph
RGW) check it, however it was sent; and they sign a request that declares
its payload's hash in X-Amz-Content-SHA256 with that, as botocore does,
without reading its body.  And ``--debug`` printed each
request's signature (good for replaying it for minutes) and any session
token: the output requestbuilder's root logger sends to the terminal goes
through :class:`RedactSecrets` (``_install_log_redaction``).  Everything else
is Python 3 porting and is left alone on Python 2.7, where euca2ools may run
beside us.
"""

from __future__ import absolute_import

import base64
import hashlib
import hmac
import io
import logging
import re
import tempfile
import textwrap
import threading
import time
import warnings

import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.urlkeys import aws_query, requote_path

try:
    import collections.abc as collections_abc
except ImportError:  # Python 2.7
    import collections as collections_abc


_INSTALLED = []

# Bullets and shell prompts that open a paragraph without counting toward its
# indentation, as requestbuilder's help formatter has always treated them.
_BULLET_RE = re.compile(r'^(\s*)([#$%*-])(\s+)')


# ---------------------------------------------------------------- text/bytes

def _to_bytes(value):
    if isinstance(value, six.binary_type):
        return value
    return six.text_type(value).encode('utf-8')


def _to_text(value):
    if isinstance(value, six.binary_type):
        return value.decode('utf-8')
    return six.text_type(value)


def hmac_digest(key, message, digestmod):
    return hmac.new(_to_bytes(key), _to_bytes(message), digestmod).digest()


def b64_text(raw):
    return base64.b64encode(raw).decode('ascii')


# ------------------------------------------------------------ help re-wrapper

def _margin_of(line):
    """Indentation of a line, with a leading bullet counted as spaces."""
    if not line.strip():
        return -1
    line = _BULLET_RE.sub(lambda m: m.group(1) + ' ' + m.group(3), line)
    return len(line) - len(line.lstrip())


def _wrap_paragraph(lines, width):
    if not lines:
        return ''
    margin = _margin_of(lines[0])
    bullet = _BULLET_RE.match(lines[0])
    words = ' '.join(line.strip() for line in lines)
    if bullet:
        words = words[1:].lstrip()  # the bullet is re-added below
    wrapped = textwrap.wrap(words, width=max(width - margin, 10))
    out = [' ' * margin + line for line in wrapped]
    if bullet and out:
        lead = bullet.group(1) + bullet.group(2)
        out[0] = lead + out[0][len(lead):]
    return '\n'.join(out)


def rewrap_description(text, width=70):
    """
    Re-wrap a command's DESCRIPTION for --help: blank lines and changes of
    indentation separate paragraphs, bullets start new ones, and ``%(prog)s``
    is filled in as argparse would.
    """
    import os.path
    import sys
    text %= {'prog': os.path.basename(sys.argv[0])}
    blocks = []
    paragraph = []
    margin = None
    for line in textwrap.dedent(text.strip('\n').rstrip()).splitlines():
        line_margin = _margin_of(line)
        starts_new = (line_margin < 0 or _BULLET_RE.match(line) or
                      line_margin != margin)
        if paragraph and starts_new:
            blocks.append(_wrap_paragraph(paragraph, width))
            paragraph = []
        if line_margin < 0:
            if blocks and blocks[-1] != '':
                blocks.append('')
        else:
            paragraph.append(line)
        margin = line_margin
    if paragraph:
        blocks.append(_wrap_paragraph(paragraph, width))
    return '\n'.join(blocks).rstrip('\n')


# -------------------------------------------------------------------- signers

def _params_from_url(url):
    """First value of each query parameter of a URL (blank values kept)."""
    query = urlparse.urlparse(url).query
    params = {}
    for key, val in urlparse.parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, val)
    return params


def hmac_v1_canonicalized_resource(self, req, service):
    """HMAC-V1 (S3 REST) CanonicalizedResource, path-style requests only."""
    req_path = urlparse.urlparse(req.url).path
    svc_path = urlparse.urlparse(service.endpoint).path
    if not req_path.startswith(svc_path):
        raise ValueError('request path {0!r} is outside the S3 endpoint '
                         'path {1!r}'.format(req_path, svc_path))
    # What follows the endpoint's own path is /bucket/key.
    resource = req_path[len(svc_path.rstrip('/')):] or '/'
    params = getattr(req, 'params', None) or _params_from_url(req.url)
    subresources = []
    for key, val in sorted(params.items()):
        if key in self.HASHED_PARAMS:
            subresources.append(key if val in (None, '') else
                                '{0}={1}'.format(key, val))
    if subresources:
        resource += '?' + '&'.join(subresources)
    self.log.debug('canonicalized resource: %s', repr(resource))
    return resource


def hmac_v1_canonicalized_headers(self, req):
    amz_headers = {}
    for key, val in req.headers.items():
        if key.lower().startswith('x-amz-'):
            amz_headers.setdefault(key.lower(), []).append(
                ' '.join(_to_text(val).split()))
    c_headers = ''.join('{0}:{1}\n'.format(key, ','.join(vals))
                        for key, vals in sorted(amz_headers.items()))
    self.log.debug('canonicalized headers: %s', repr(c_headers))
    return c_headers


def hmac_v1_sign_string(self, to_sign):
    return b64_text(hmac_digest(self.args['secret_key'], to_sign,
                                hashlib.sha1))


def query_v2_apply_to_request(self, req, service):
    """AWS signature version 2 on a prepared request (query or form POST)."""
    parsed = urlparse.urlparse(req.url)
    source = req.body or '' if req.method == 'POST' else parsed.query
    # parse_qsl must see the native str type: on Python 2, percent-escapes
    # in a unicode string decode to code points, not UTF-8 bytes.
    source = _to_text(source) if six.PY3 else _to_bytes(source)
    params = {}
    for key, val in urlparse.parse_qsl(source, keep_blank_values=True):
        params.setdefault(key, val)
    params['AWSAccessKeyId'] = self.args['key_id']
    params['SignatureVersion'] = '2'
    params['SignatureMethod'] = 'HmacSHA256'
    params['Timestamp'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    if self.args.get('security_token'):
        params['SecurityToken'] = self.args['security_token']
    params.pop('Signature', None)  # a retry must not sign the old signature
    query = '&'.join(
        urlparse.quote(_to_bytes(key), safe='') + '=' +
        urlparse.quote(_to_bytes(params[key]), safe='-_.~')
        for key in sorted(params))
    to_sign = '\n'.join((req.method, parsed.netloc.lower(),
                         parsed.path or '/', query))
    self.log.debug('string to sign: %s',
                   repr(re.sub('assword=[^&]*', 'assword=<redacted>',
                               to_sign)))
    params['Signature'] = self.sign_string(to_sign)
    if req.method == 'POST':
        req.prepare_body(params, {})
    else:
        req.prepare_url(urlparse.urlunparse(parsed[:3] + ('', '', '')),
                        params)
    return req


def query_v2_sign_string(self, to_sign):
    return b64_text(hmac_digest(self.args['secret_key'], to_sign,
                                hashlib.sha256))


def v4_apply_to_request(self, req, service):
    """AWS signature version 4 (headers or, for QueryHmacV4Auth, query)."""
    from requestbuilder.exceptions import AuthError
    if not service.NAME:
        raise AuthError('BUG: service class {0} does not have a name'
                        .format(service.__class__.__name__))
    payload_hash = self._hash_payload(req)
    now = time.time()
    amz_date = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))
    scope = self._build_scope(service, now)
    credential = '/'.join((self.args['key_id'],) + tuple(scope))
    self._update_request_before_signing(req, credential, payload_hash,
                                        amz_date)
    if service.NAME == 's3':
        # S3's canonical URI is the key encoded once, AWS's way, whatever
        # encoding the request was sent with (its servers decode the path
        # and encode it again); other services encode the path once more.
        c_uri = requote_path(urlparse.urlsplit(req.url).path or '/')
    else:
        c_uri = self._get_canonical_uri(req)
    c_request = '\n'.join((
        req.method.upper(), c_uri,
        self._get_canonical_query(req), self._get_canonical_headers(req),
        '', self._get_signed_headers(req), payload_hash))
    self.log.debug('canonical request: %s', repr(c_request))
    to_sign = '\n'.join(('AWS4-HMAC-SHA256', amz_date, '/'.join(scope),
                         hashlib.sha256(_to_bytes(c_request)).hexdigest()))
    self.log.debug('string to sign: %s',
                   repr(re.sub('assword=[^&]*', 'assword=<redacted>',
                               to_sign)))
    key = _to_bytes('AWS4' + self.args['secret_key'])
    for chunk in scope:
        key = hmac_digest(key, chunk, hashlib.sha256)
    signature = hmac.new(key, _to_bytes(to_sign), hashlib.sha256).hexdigest()
    self._apply_signature(req, credential, signature)
    return req


def v4_canonical_query(self, req):
    """
    The query's parameters decoded once and encoded AWS's way (every byte
    but the unreserved ones, so a space is %20 and "/" is %2F), sorted.
    """
    query = urlparse.urlsplit(req.url).query
    # parse_qsl must see the native str type (see query_v2_apply_to_request).
    query = _to_text(query) if six.PY3 else _to_bytes(query)
    return aws_query(urlparse.parse_qsl(query, keep_blank_values=True))


def v4_normalized_headers(self, req):
    # Proxies rewrite Connection; User-Agent is left out so that signed query
    # URLs can be stored and replayed by other clients.
    return dict((key.lower().strip(), _to_text(val).strip())
                for key, val in req.headers.items()
                if key.lower() not in ('connection', 'user-agent'))


def v4_hash_payload(self, req):
    if self.args.get('payload_hash'):
        return self.args['payload_hash']
    # A request that says how its payload is signed (EBS's PutSnapshotBlock:
    # UNSIGNED-PAYLOAD, its block covered by a signed checksum header) is
    # signed so, and its body not read.
    declared = req.headers.get('X-Amz-Content-SHA256')
    if declared:
        return declared
    digest = hashlib.sha256()
    body = req.body
    if not body:
        pass
    elif hasattr(body, 'seek') and hasattr(body, 'read'):
        start = body.tell()
        for chunk in iter(lambda: body.read(1 << 16), b''):
            digest.update(chunk)
        body.seek(start)
    elif hasattr(body, 'read'):
        # An unseekable stream: keep a copy to send after hashing it.  10 MiB
        # in memory covers a whole bundle part, the usual upload.
        spool = tempfile.SpooledTemporaryFile(max_size=10 * 1024 * 1024)
        for chunk in iter(lambda: body.read(1 << 16), b''):
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        req.body = spool
    else:
        digest.update(_to_bytes(body))
    return digest.hexdigest()


# --------------------------------------------------------------- the rest

class _CollectionsWithMapping(object):
    """What requestbuilder.service uses of ``collections`` (Mapping only)."""
    # ``import collections`` does not import its ``abc`` submodule: only an
    # explicit import makes it an attribute, whatever else was loaded.
    Mapping = collections_abc.Mapping


def iterator_adapter_read(self, size=-1):
    """_IteratorFileObjAdapter.read that joins bytes, as responses are."""
    if size is None or size < 0:
        self._buflist.extend(self._source)
        result = b''.join(self._buflist)
        self._buflist, self._len = [], 0
        return result
    while self._len < size:
        chunk = next(self._source, None)
        if chunk is None:
            break
        self._buflist.append(chunk)
        self._len += len(chunk)
    joined = b''.join(self._buflist)
    result, rest = joined[:size], joined[size:]
    self._buflist, self._len = ([rest], len(rest)) if rest else ([], 0)
    return result


def logging_wrapper_read(self, size=-1):
    chunk = self.fileobj.read(size)
    if self.logger.isEnabledFor(self.level):
        self.logger.log(self.level, '%s', chunk.decode('utf-8', 'replace'),
                        extra={'append': True})
    return chunk


def _rewinding_send_request(original_send, original_prepare):
    """
    BaseService.send_request retries a 500 or 503, but rewinds a file body
    only after a timeout: the retry then signs and sends an exhausted file
    (and a server waiting for the promised bytes hangs).  Every attempt is
    prepared through one private method, so rewind there.
    """
    # Per thread: one service may send several uploads at once.
    body_start = threading.local()

    def prepare_from_start(self, method, url, params, data, files, headers,
                           auth):
        start = getattr(body_start, 'offset', None)
        if start is not None:
            data.seek(start)
        return original_prepare(self, method, url, params, data, files,
                                headers, auth)

    def send_request(self, method='GET', path=None, params=None,
                     headers=None, data=None, files=None, auth=None):
        seekable = hasattr(data, 'seek') and hasattr(data, 'tell')
        body_start.offset = data.tell() if seekable else None
        try:
            return original_send(self, method, path, params, headers, data,
                                 files, auth)
        finally:
            body_start.offset = None

    return send_request, prepare_from_start


def install():
    """
    Apply the fixes above to requestbuilder, once.  The signers are replaced
    on every Python: their bugs are bugs on Python 2.7 too, and ours are
    proven against botocore on both.  The rest is Python 3 porting.
    """
    if _INSTALLED:
        return
    # Compiling requestbuilder's ``x is 0`` comparisons makes Python 3.8+
    # print SyntaxWarnings on a user's first run; they are not the user's to
    # fix (and ``is 0`` happens to work on CPython's small-int cache).
    warnings.filterwarnings('ignore', category=SyntaxWarning,
                            module=r'.*requestbuilder')
    _install_signers()
    _install_retry_rewind()
    _install_log_redaction()
    if six.PY3:
        _port_to_python3()
    _INSTALLED.append(True)


def _install_signers():
    import requestbuilder.auth.aws as aws
    aws.HmacV1Auth.get_canonicalized_resource = hmac_v1_canonicalized_resource
    aws.HmacV1Auth.get_canonicalized_headers = hmac_v1_canonicalized_headers
    aws.HmacV1Auth.sign_string = hmac_v1_sign_string
    aws.QueryHmacV2Auth.apply_to_request = query_v2_apply_to_request
    aws.QueryHmacV2Auth.sign_string = query_v2_sign_string
    aws.HmacV4Auth.apply_to_request = v4_apply_to_request
    aws.HmacV4Auth._get_canonical_query = v4_canonical_query
    aws.HmacV4Auth._get_normalized_headers = v4_normalized_headers
    aws.HmacV4Auth._hash_payload = v4_hash_payload
    aws._get_params_from_url = _params_from_url


def _install_retry_rewind():
    from requestbuilder.service import BaseService
    send, prepare = _rewinding_send_request(
        BaseService.send_request,
        BaseService._BaseService__log_and_prepare_request)
    BaseService.send_request = send
    BaseService._BaseService__log_and_prepare_request = prepare


# What --debug output must never show: request signatures (SigV4 headers and
# queries, query V2 parameters, HMAC-V1 headers), session tokens, and a
# secret key given on the command line (requestbuilder logs the parsed
# arguments).
_SECRETS = [
    (re.compile(r'(Signature=)[^,&\s\'"]+'), r'\1<redacted>'),
    (re.compile(r'(X-Amz-Security-Token=)[^&\s\'"]+', re.I),
     r'\1<redacted>'),
    (re.compile(r'\b((?:X-Amz-)?(?:Signature|Security-?Token):\s*)\S+',
                re.I), r'\1<redacted>'),
    (re.compile(r'(Authorization:\s*AWS [^:\s]+:)\S+'), r'\1<redacted>'),
    (re.compile(r"""(['"](?:secret_key|security_token)['"]:\s*u?)"""
                r"""(['"])[^'"]*\2"""), r"\1'<redacted>'"),
]


def redact_secrets(text):
    """``text`` with every signature, token and secret key taken out."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A handler's filter: each record's message, secrets redacted."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's to report
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_log_redaction():
    """Every handler requestbuilder gives the root logger (the one --debug
    output goes through, euca2ools' included) redacts secrets."""
    import requestbuilder.command as command
    configure = command.configure_root_logger

    def configure_root_logger(*args, **kwargs):
        configure(*args, **kwargs)
        for handler in logging.getLogger().handlers:
            if not any(isinstance(existing, RedactSecrets)
                       for existing in handler.filters):
                handler.addFilter(RedactSecrets())
    command.configure_root_logger = configure_root_logger


def _port_to_python3():
    import requestbuilder.command as command
    import requestbuilder.request as request
    import requestbuilder.service as service
    import six.moves.configparser as configparser

    command._rewrap_description = rewrap_description
    service.file = io.IOBase
    request.file = io.IOBase
    service.collections = _CollectionsWithMapping
    request._IteratorFileObjAdapter.read = iterator_adapter_read
    request._ReadLoggingFileWrapper.read = logging_wrapper_read
    # The alias Python 3.2-3.11 had warned at every use, and 3.12 dropped.
    configparser.SafeConfigParser = configparser.ConfigParser
