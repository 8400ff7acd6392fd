# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Reading a file from an image store: streamed, resumable, bounded, checked.

Tarballs are large and stores sit behind caches and flaky links; stores are
also attacker input.  So a download

- resumes a connection cut mid-body with ``Range: bytes=N-`` and
  ``If-Range`` (the first answer's ETag, else its Last-Modified), so that a
  file replaced on the server between attempts starts over instead of being
  spliced -- and checks the answer's own validator too, for servers that
  send the rest of another file anyway (Ceph RGW 16 answers a stale
  If-Range with 206); what to do with each answer is decided by
  :func:`plan_answer`, a pure function;
- is held to the size the catalog gives, with or without a Content-Length,
  and where nothing gives one, to the most a file of its kind may have
  (limits.py): one byte more and it stops (an endless body ends nowhere);
- keeps a pace (:class:`Pace`, as curl's ``--speed-time`` and
  ``--speed-limit``): if no byte arrives for ``stall_timeout`` seconds the
  connection is dropped and resumed, like a cut; if fewer than
  ``min_rate`` bytes a second arrive over that long, the download fails,
  saying the rate seen (a store dripping a byte every few seconds would
  otherwise hold the command forever: the socket's own timeout is per
  read).  Only the time spent waiting for the store counts, not the time
  the reader spends elsewhere (a bundler waiting for its uploads);
- hashes (MD5 and SHA-256) as it goes, so the file is read once;
- asks for ``Accept-Encoding: identity`` and keeps the bytes as sent when a
  store encodes them anyway: the catalog's checksums are of the .tar.gz.

:class:`DownloadStream` is a download as a file object (for the streamed
install); :func:`download` writes one to a file in a directory the caller
owns (``<dest>.part``, renamed when complete, so a good file is never
replaced by a partial one; a ``.part`` left by an interrupted run is
resumed).  Errors are :class:`DownloadError` (with the store's status when
it answered one) or :class:`IntegrityError`.
"""

from __future__ import absolute_import

import collections
import errno
import hashlib
import io
import json
import logging
import os
import re
import socket
import threading
import time
import zlib

import requests.exceptions
import six
from six.moves import http_client

from eustore_plugin.errors import EustoreError, status_of
from eustore_plugin.limits import TARBALL
from eustore_plugin.values import as_count

try:
    import urllib3.exceptions as _urllib3_exceptions
except ImportError:  # pragma: no cover - requests always brings urllib3
    from requests.packages.urllib3 import exceptions as _urllib3_exceptions


LOG = logging.getLogger(__name__)

# Small enough that a cut loses little: with urllib3 2.x a read that hits
# the end of a cut body raises and drops the partial chunk it had buffered,
# so a resume fetches up to one chunk again.
CHUNK_SIZE = 16 * 1024
PART_SUFFIX = '.part'
# Where a .part's first answer's validator is kept, for If-Range on resume.
VALIDATOR_SUFFIX = '.part.validator'
DEFAULT_STALL_TIMEOUT = 60.0
# Bytes a second a transfer must keep up over any stall timeout: a modem
# (7 KB/s) passes it, a store dripping a byte a second does not.
DEFAULT_MIN_RATE = 1024.0
DEFAULT_MAX_RESUMES = 5
_CONTENT_RANGE_RE = re.compile(r'^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$', re.I)

# What reading a response body raises when the connection drops.  Only the
# reads are guarded: an error writing the local file is not a dropped
# connection and is never retried.
_CUT_ERRORS = (requests.exceptions.ChunkedEncodingError,
               requests.exceptions.ConnectionError,
               requests.exceptions.Timeout,
               _urllib3_exceptions.ProtocolError,
               _urllib3_exceptions.ReadTimeoutError,
               http_client.IncompleteRead,
               socket.error, IOError, OSError)


class DownloadError(EustoreError):
    """A file could not be downloaded; the message says why."""


class IntegrityError(DownloadError):
    """What was downloaded is not the file the catalog describes."""


class FileChangedError(DownloadError):
    """The file changed on the store while it was being read, after bytes
    of it had been handed on: read it again from its start."""


class Pace(collections.namedtuple('Pace', 'stall_timeout min_rate')):
    """
    How fast a store must send: some byte every ``stall_timeout`` seconds,
    and at least ``min_rate`` bytes a second over any ``stall_timeout``
    seconds (as curl's ``--speed-time`` and ``--speed-limit``).
    """
    __slots__ = ()


DEFAULT_PACE = Pace(DEFAULT_STALL_TIMEOUT, DEFAULT_MIN_RATE)


def pace_message(url, watch):
    """The one line for a transfer the watch found too slow."""
    got, seconds = watch.seen
    return ('the store sent {0} bytes of {1} in {2:.0f} seconds ({3:.1f} '
            'bytes/s), slower than the {4:.0f} bytes/s a transfer must keep '
            'up ("--min-rate"); try again later, or use a store nearer you'
            .format(got, url, seconds, got / float(seconds),
                    watch.pace.min_rate))


def stall_message(url, watch):
    """The one line for a transfer that sent nothing for too long."""
    return 'the store at {0} sent nothing for {1:.0f} seconds'.format(
        url, watch.pace.stall_timeout)


class DownloadResult(collections.namedtuple('DownloadResult',
                                            'path size md5 sha256 sha512')):
    """What was downloaded: where, how many bytes, their digests (sha512
    only when it was asked for)."""
    __slots__ = ()

    def __new__(cls, path, size, md5, sha256, sha512=None):
        return super(DownloadResult, cls).__new__(cls, path, size, md5,
                                                  sha256, sha512)


# ----------------------------------------------------------- the decision

READ = 'read'              # read the body; drop ``skip`` bytes first
RESTART = 'restart'        # the body is the whole file: discard what is held
ASK_WHOLE = 'ask-whole'    # ask again without Range
REPLACED = 'replaced'      # another file now: what was handed on is wrong
FAIL = 'fail'

Plan = collections.namedtuple('Plan', 'action skip total message')


def plan_answer(status, content_range, content_length, done, resumed,
                expected_size=None, can_restart=False, same_file=None):
    """
    What to do with a store's answer to a request for a file of which
    ``done`` bytes are held.  ``resumed``: the request asked for
    ``bytes=done-``; ``content_range``/``content_length``: the answer's
    headers (text or None); ``same_file``: whether the answer's ETag or
    Last-Modified matches the first answer's (None: unknown);
    ``can_restart``: the caller can throw away what it holds.  Returns a
    :class:`Plan`; ``total`` is the whole file's size when the answer says.
    """
    def fail(message):
        return Plan(FAIL, 0, None, message)

    def replaced(message):
        return Plan(REPLACED, 0, None, message + '; run the command again')

    length = as_count(content_length)
    if status in (200, 206) and done and same_file is False:
        # Another file than the held bytes are of: a 200 is it whole, a 206
        # (from a server that ignored If-Range) its rest, never to splice.
        if not can_restart:
            return replaced('the file changed on the store while it was '
                            'being read')
        if status == 206:
            return Plan(ASK_WHOLE, 0, None, None)
        return _sized(Plan(RESTART, 0, length, None), expected_size)
    if status == 206 and resumed:
        match = _CONTENT_RANGE_RE.match(content_range or '')
        if not match or int(match.group(1)) != done:
            # Not the bytes asked for.
            return Plan(ASK_WHOLE, 0, None, None)
        total = int(match.group(3)) if match.group(3) != '*' else None
        return _sized(Plan(READ, 0, total, None), expected_size)
    if status == 200:
        if not done:
            return _sized(Plan(READ, 0, length, None), expected_size)
        # The whole file again: a server that ignores Range, or (If-Range
        # sent) a file that changed since the held bytes were read.
        if can_restart:
            return _sized(Plan(RESTART, 0, length, None), expected_size)
        if length is not None and length < done:
            return replaced('the store now serves a shorter file than the '
                            'part already read')
        # Bytes already given cannot be taken back: skip them.
        return _sized(Plan(READ, done, length, None), expected_size)
    if status == 416 and resumed:
        if can_restart:
            return Plan(ASK_WHOLE, 0, None, None)
        return replaced('the store refused to resume the download (416): '
                        'the file on it is shorter than what was already '
                        'read')
    return fail(None)  # the caller words errors of the status itself


def _sized(plan, expected_size):
    if expected_size is not None and plan.total is not None and \
            plan.total != expected_size:
        return Plan(FAIL, 0, plan.total, (
            'the image store serves {0} bytes but its catalog says {1}; the '
            'store is inconsistent, tell its operator (nothing more was '
            'downloaded)'.format(plan.total, expected_size)))
    return plan


def status_message(status, reason, url):
    """The one line for a store's error status."""
    if status in (404, 410):
        return ('the image store has no file at {0} ({1}); check the '
                'catalog\'s url for this image'.format(url, status))
    return ('the image store answered {0} {1} for {2}; try again later or '
            'tell the store\'s operator'.format(status, reason or '', url)
            .replace('  ', ' '))


# ------------------------------------------------------------------ helpers

def _header(response, name):
    headers = getattr(response, 'headers', None) or {}
    value = headers.get(name)
    if value is None:  # a plain dict, as local file answers have
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                return val
    return value


def _close(response):
    close = getattr(response, 'close', None)
    if close is not None:
        close()


def remove_if_present(path):
    try:
        os.remove(path)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise


def body_chunks(response, size=CHUNK_SIZE):
    """The body's bytes exactly as sent, whatever its Content-Encoding."""
    encoding = (_header(response, 'Content-Encoding') or '').strip().lower()
    raw = getattr(response, 'raw', None)
    if encoding not in ('', 'identity') and hasattr(raw, 'stream'):
        # requests would undo the encoding; urllib3's stream need not.
        return raw.stream(size, decode_content=False)
    return response.iter_content(size)


def _validator(response):
    """What If-Range can carry to say "only if still this file"."""
    etag = _header(response, 'ETag')
    if etag and not etag.strip().startswith('W/'):
        return etag.strip()
    return _header(response, 'Last-Modified')


class Hashes(object):
    """The MD5 and SHA-256 (and, when asked, SHA-512) of the same bytes,
    fed as they pass."""

    def __init__(self, sha512=False):
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()
        self.sha512 = hashlib.sha512() if sha512 else None

    def update(self, data):
        self.md5.update(data)
        self.sha256.update(data)
        if self.sha512 is not None:
            self.sha512.update(data)

    def fresh(self):
        """New hashes of the same kinds."""
        return Hashes(sha512=self.sha512 is not None)

    def result(self, path, size):
        return DownloadResult(path, size, self.md5.hexdigest(),
                              self.sha256.hexdigest(),
                              self.sha512.hexdigest() if self.sha512
                              is not None else None)

    @classmethod
    def of_file(cls, path, sha512=False):
        hashes = cls(sha512)
        size = 0
        with io.open(path, 'rb') as part:
            for chunk in iter(lambda: part.read(1 << 20), b''):
                hashes.update(chunk)
                size += len(chunk)
        return hashes, size


class CountingReader(object):
    """A file's read(), counting the bytes it gives out and feeding them to
    ``hashes`` (a :class:`Hashes`) if given."""

    def __init__(self, fileobj, hashes=None):
        self._file = fileobj
        self.hashes = hashes
        self.size = 0

    def read(self, size=-1):
        data = self._file.read(size)
        if self.hashes is not None:
            self.hashes.update(data)
        self.size += len(data)
        return data


STALLED = 'stalled'
TOO_SLOW = 'too slow'


class TransferWatch(object):
    """
    The pace (a :class:`Pace`) of reading one response at a time, timed by
    the waits for its bytes (:meth:`next_chunk`), not by the time the
    reader spends between them.  When no byte comes for ``stall_timeout``
    seconds of waiting, or fewer than ``min_rate`` bytes a second over that
    long, the response's connection is shut down, so that the read blocked
    on it returns; ``fired`` then says why (STALLED or TOO_SLOW) and
    ``seen`` the bytes and seconds of the slow window.  One thread per
    watch, started with the first response.
    """

    def __init__(self, pace):
        self.pace = pace
        self.fired = None
        self.seen = None
        self._response = None
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = None
        self._reset()

    def _reset(self):
        self._waited = 0.0       # seconds of waits over
        self._since = None       # when the wait under way began
        self._received = 0
        self._last_byte = 0.0    # _waited when a byte last came
        # (seconds waited, bytes received) now and then: the window.
        self._samples = collections.deque([(0.0, 0)])

    def watch(self, response):
        with self._lock:
            self._response, self.fired, self.seen = response, None, None
            self._reset()
        if self._thread is None and self.pace.stall_timeout:
            self._thread = threading.Thread(target=self._run,
                                            name='transfer-watch')
            self._thread.daemon = True
            self._thread.start()

    def next_chunk(self, chunks):
        """The next chunk of the iterator ``chunks`` (the watched
        response's body), or None at its end; the wait for it counted."""
        with self._lock:
            self._since = time.time()
        chunk = None
        try:
            chunk = next(chunks, None)
            return chunk
        finally:
            with self._lock:
                if self._since is not None:
                    self._waited += time.time() - self._since
                    self._since = None
                if chunk:
                    self._received += len(chunk)
                    self._last_byte = self._waited

    def stop(self):
        self._stopped = True
        with self._lock:
            self._response = None

    def _run(self):
        while not self._stopped:
            time.sleep(min(1.0, self.pace.stall_timeout / 4.0))
            with self._lock:
                if self._response is None:
                    continue
                verdict = self._judge(time.time())
                if verdict is not None:
                    LOG.debug('the transfer is %s (%s): dropping the '
                              'connection', verdict, self.seen or
                              'no data for {0:.0f} seconds'.format(
                                  self.pace.stall_timeout))
                    self.fired = verdict
                    _shut_down(self._response)
                    self._response = None

    def _judge(self, now):
        waited = self._waited
        if self._since is not None:
            waited += now - self._since
        window = self.pace.stall_timeout
        if waited - self._last_byte > window:
            return STALLED
        samples = self._samples
        if waited > samples[-1][0]:
            samples.append((waited, self._received))
        while len(samples) > 1 and samples[1][0] <= waited - window:
            samples.popleft()
        start, before = samples[0]
        if self.pace.min_rate and waited - start >= window:
            got = self._received - before
            if got < self.pace.min_rate * (waited - start):
                self.seen = (got, waited - start)
                return TOO_SLOW
        return None


def _shut_down(response):
    """Shut a streamed response's socket, from another thread."""
    raw = getattr(response, 'raw', None)
    candidates = []
    connection = getattr(raw, '_connection', None)  # urllib3 2
    candidates.append(getattr(connection, 'sock', None))
    fp = getattr(getattr(raw, '_fp', None), 'fp', None)  # http.client
    candidates.append(getattr(getattr(fp, 'raw', None), '_sock', None))
    candidates.append(getattr(fp, '_sock', None))  # Python 2's httplib
    for sock in candidates:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (socket.error, OSError):
                pass
            return


# ------------------------------------------------------------------ stream

class DownloadStream(object):
    """
    A file read straight off a store, as a file object: ``read()`` and
    ``chunks()`` give its bytes in order, hashed on the way.  A connection
    cut (or stalled) mid-body is resumed up to ``max_resumes`` times.
    ``on_restart``, if given, is called when the store can only send the
    whole file again and the caller throws away what it holds; without it,
    the bytes already given are skipped (when the file is still the same).
    ``offset``, ``hashes`` and ``validator`` continue a download whose first
    ``offset`` bytes were had (and hashed) elsewhere.  ``pace``: see
    :class:`Pace`; ``limit``: the most bytes a file of its kind may have (a
    :class:`~eustore_plugin.limits.SizeLimit`), which holds whatever the
    catalog or the store says.
    """

    def __init__(self, open_url, url, expected_size=None, progress=None,
                 max_resumes=DEFAULT_MAX_RESUMES, offset=0, hashes=None,
                 on_restart=None, validator=None, pace=DEFAULT_PACE,
                 limit=TARBALL):
        self.open_url = open_url
        self.url = url
        self.expected_size = expected_size
        self.limit = limit
        self.progress = progress
        self.max_resumes = max_resumes
        self.on_restart = on_restart
        self.done = offset
        self.hashes = hashes or Hashes()
        self.validator = validator
        self.total = None
        self.cuts = 0
        self._watch = TransferWatch(pace)
        self._response = None
        self._chunks = None
        self._skip = 0
        self._use_range = True
        self._pending = b''
        self._eof = False
        self._closed = False

    # What a caller may want to know or keep.
    @property
    def first_validator(self):
        """The validator of the first answer (to keep beside a .part)."""
        return self.validator

    def chunks(self):
        """The file's remaining bytes, chunk by chunk."""
        while True:
            chunk = self._next_chunk()
            if not chunk:
                return
            yield chunk

    def read(self, size=-1):
        if size is None or size < 0:
            data = self._pending + b''.join(self.chunks())
            self._pending = b''
            return data
        if not self._pending:
            # The common case: a read of a chunk or more, passed on whole
            # when it fits (no copy).
            chunk = self._next_chunk()
            if len(chunk) <= size:
                return chunk
            self._pending = chunk
        pieces, held = [self._pending], len(self._pending)
        while held < size:
            chunk = self._next_chunk()
            if not chunk:
                break
            pieces.append(chunk)
            held += len(chunk)
        data = b''.join(pieces)
        data, self._pending = data[:size], data[size:]
        return data

    def result(self, path=None):
        """What was read, once read to the end."""
        return self.hashes.result(path, self.done)

    def close(self):
        """Stop: a read blocked on the connection (in another thread)
        returns, and nothing is resumed."""
        self._closed = True
        self._watch.stop()
        if self._response is not None and not self._eof:
            _shut_down(self._response)
        _close(self._response)

    # ------------------------------------------------------------------

    def _refuse_size(self, size, who):
        """IntegrityError when ``who`` ("the catalog gives", "the image
        store announces") ``size`` bytes, more than the limit."""
        if size is not None and size > self.limit.size:
            raise IntegrityError(
                '{0} {1} bytes for {2}, more than the {3} bytes a {4} may '
                'have; it is not one to install, tell the store\'s operator'
                .format(who, size, self.url, self.limit.size,
                        self.limit.what))

    def _open(self):
        self._refuse_size(self.expected_size, 'the catalog gives')
        headers = {'Accept-Encoding': 'identity'}
        resumed = self.done > 0 and self._use_range
        if resumed:
            headers['Range'] = 'bytes={0}-'.format(self.done)
            if self.validator:
                headers['If-Range'] = self.validator
        LOG.debug('GET %s%s', self.url, ' with Range: {0}{1}'.format(
            headers['Range'], ', If-Range: ' + self.validator
            if self.validator else '') if resumed else '')
        try:
            response = self.open_url(self.url, headers)
        except Exception as err:
            status = status_of(err)
            if status is None:
                raise
            response = _ErrorAnswer(status, err)
        status = response.status_code
        validator = _validator(response)
        same = None
        if self.validator and validator:
            same = validator == self.validator
        plan = plan_answer(status, _header(response, 'Content-Range'),
                           _header(response, 'Content-Length'), self.done,
                           resumed, self.expected_size,
                           can_restart=self.on_restart is not None,
                           same_file=same)
        if plan.action == REPLACED:
            _close(response)
            raise FileChangedError('{0} (at {1})'.format(plan.message,
                                                         self.url), status)
        if plan.action == FAIL:
            _close(response)
            if isinstance(response, _ErrorAnswer):
                if plan.message is None:
                    raise response.error
            if plan.message is None:
                raise DownloadError(status_message(
                    status, getattr(response, 'reason', ''), self.url),
                    status)
            error = IntegrityError if plan.total is not None else \
                DownloadError
            raise error('{0} (at {1})'.format(plan.message, self.url),
                        status)
        if plan.action == ASK_WHOLE:
            LOG.debug('the store answered %s to a resume: asking for the '
                      'whole file', status)
            _close(response)
            self._use_range = False
            return self._open()
        if plan.action == RESTART:
            LOG.debug('the store answered %s (the whole file) to a resume: '
                      '%s; starting over', status, 'the file changed since '
                      'the first answer' if same is False else
                      'it ignores Range')
            self._restart()
        elif plan.skip:
            LOG.debug('the store answered %s (the whole file) to a resume: '
                      'it ignores Range; skipping the %d bytes already read',
                      status, plan.skip)
        if self.validator is None and validator:
            LOG.debug('resumes of %s will ask for the same file (If-Range: '
                      '%s)', self.url, validator)
            self.validator = validator
        if plan.total is not None and plan.total > self.limit.size:
            _close(response)
            self._refuse_size(plan.total, 'the image store announces')
        self.total = plan.total
        self._response, self._skip = response, plan.skip
        self._chunks = iter(body_chunks(response))
        self._watch.watch(response)
        self._report()

    def _restart(self):
        self.on_restart()
        self.done, self.hashes, self.validator = 0, self.hashes.fresh(), None

    def _report(self):
        if self.progress is not None:
            self.progress(self.done, self.total if self.total is not None
                          else self.expected_size)

    def _resume_after(self, reason):
        _close(self._response)
        self._response = self._chunks = None
        self.cuts += 1
        self._use_range = True
        LOG.debug('download of %s cut after %d bytes (%s); resuming',
                  self.url, self.done, reason)
        if self.cuts > self.max_resumes:
            self._watch.stop()
            raise DownloadError('the download of {0} was cut off {1} times '
                                '(last: {2})'.format(self.url, self.cuts,
                                                     reason))

    def _next_chunk(self):
        """The next bytes of the file, or b'' at its end."""
        while not self._eof:
            if self._closed:
                raise DownloadError('the download of {0} was stopped'.format(
                    self.url))
            if self._chunks is None:
                self._open()
            cut = None
            try:
                chunk = self._watch.next_chunk(self._chunks)
            except _CUT_ERRORS as err:
                chunk, cut = None, '{0}: {1}'.format(type(err).__name__, err)
            if self._watch.fired == TOO_SLOW:
                # Not resumed: the store itself is slow.
                self.close()
                raise DownloadError(pace_message(self.url, self._watch))
            if chunk is None and self._watch.fired == STALLED:
                cut = 'no data for {0:.0f} seconds'.format(
                    self._watch.pace.stall_timeout)
            elif chunk is None and cut is None and self.total is not None \
                    and self.done < self.total:
                cut = 'the body ended early'
            if cut is not None:
                self._resume_after(cut)
                continue
            if chunk is None:
                _close(self._response)
                self._watch.stop()
                self._eof = True
                break
            if self._skip:
                dropped = min(self._skip, len(chunk))
                chunk, self._skip = chunk[dropped:], self._skip - dropped
            if not chunk:
                continue
            self.done += len(chunk)
            if self.done > self._bound():
                self.close()
                raise IntegrityError(
                    'the image store sent more than the {0} bytes {1} for '
                    '{2}; try again later or tell the store\'s operator'
                    .format(self._bound(), 'it announced'
                            if self.total is not None else
                            'the catalog gives'
                            if self.expected_size is not None else
                            'a {0} may have'.format(self.limit.what),
                            self.url))
            self.hashes.update(chunk)
            self._report()
            return chunk
        return b''

    def _bound(self):
        """The most bytes the file may have: what the store announced, else
        what the catalog gives, else the limit of its kind."""
        for size in (self.total, self.expected_size):
            if size is not None:
                return size
        return self.limit.size


class _ErrorAnswer(object):
    """An error status open_url raised, held like an answer to plan it."""

    def __init__(self, status, error):
        self.status_code = status
        self.error = error
        self.headers = {}
        self.reason = ''

    def close(self):
        pass


# -------------------------------------------------------------- to a file

def download(open_url, url, dest_path, expected_size=None, progress=None,
             max_resumes=DEFAULT_MAX_RESUMES, pace=DEFAULT_PACE, sha512=False,
             limit=TARBALL):
    """
    Download ``url`` to ``dest_path``, in a directory the caller owns, and
    return a :class:`DownloadResult`.  ``open_url(url, headers)`` returns a
    streamed response-like object (``status_code``, ``headers``,
    ``iter_content``) or raises; ``expected_size`` is the catalog's size, if
    known; ``progress(bytes_done, total_or_None)`` is called as bytes
    arrive; ``pace`` and ``limit`` are as :class:`DownloadStream` has them.
    A ``.part`` of an earlier run is resumed.
    """
    part_path = dest_path + PART_SUFFIX
    validator_path = dest_path + VALIDATOR_SUFFIX
    hashes, done = Hashes(sha512), 0
    if os.path.lexists(part_path) and not _is_regular_file(part_path):
        raise DownloadError('{0} is not a file this tool wrote; remove it '
                            'and run the command again'.format(part_path))
    if _is_regular_file(part_path):
        bound = expected_size if expected_size is not None else limit.size
        if os.path.getsize(part_path) > bound:
            LOG.debug('%s is longer than the %d bytes the file may have: not '
                      'a start of it, removed', part_path, bound)
            _discard(part_path, validator_path)
        else:
            hashes, done = Hashes.of_file(part_path, sha512)
            LOG.debug('resuming %s from the %d bytes of %s', url, done,
                      part_path)
    if expected_size is not None and 0 < expected_size == done:
        # An earlier run got every byte but stopped before the rename.
        if progress is not None:
            progress(done, expected_size)
        _finish(part_path, validator_path, dest_path)
        return hashes.result(dest_path, done)
    part = _PartFile(part_path, validator_path, append=done > 0)
    stream = DownloadStream(open_url, url, expected_size, progress,
                            max_resumes, offset=done, hashes=hashes,
                            on_restart=part.empty,
                            validator=part.validator if done else None,
                            pace=pace, limit=limit)
    try:
        for chunk in stream.chunks():
            part.write(chunk, stream.first_validator)
        part.finish(stream.first_validator)
    except DownloadError as err:
        part.close()
        if err.status_code in (404, 410) or isinstance(err, IntegrityError):
            _discard(part_path, validator_path)
        elif os.path.exists(part_path) and stream.done:
            raise DownloadError(
                '{0}; {1} of {2} bytes are kept in {3}: run the command '
                'again to resume'.format(err, stream.done, stream.total if
                                         stream.total is not None else '?',
                                         part_path), err.status_code)
        raise
    except Exception as err:
        part.close()
        if status_of(err) in (404, 410):
            _discard(part_path, validator_path)
        raise
    finally:
        stream.close()
    _finish(part_path, validator_path, dest_path)
    return stream.result(dest_path)


def _is_regular_file(path):
    try:
        return os.path.isfile(path) and not os.path.islink(path)
    except OSError:
        return False


def _discard(part_path, validator_path):
    remove_if_present(part_path)
    remove_if_present(validator_path)


def _finish(part_path, validator_path, dest_path):
    remove_if_present(validator_path)
    # Atomic on POSIX: dest is the old good file or the new one, never half.
    getattr(os, 'replace', os.rename)(part_path, dest_path)


class _PartFile(object):
    """
    The .part being written: created at the first byte (a refused request
    leaves none), exclusively and without following a symlink, readable by
    its owner only; emptied when the store starts the file over.  The first
    answer's validator is kept beside it, for If-Range on a later resume.
    """

    def __init__(self, path, validator_path, append):
        self.path = path
        self.validator_path = validator_path
        self._append = append
        self._file = None
        self._validator_written = append
        self.validator = None
        if append:
            try:
                with io.open(validator_path, 'r', encoding='utf-8') as kept:
                    self.validator = json.load(kept).get('validator')
            except (IOError, OSError, ValueError, AttributeError):
                self.validator = None

    def write(self, data, validator=None):
        if self._file is None:
            self._open()
        if not self._validator_written:
            self._keep_validator(validator)
        self._file.write(data)

    def _open(self):
        nofollow = getattr(os, 'O_NOFOLLOW', 0)
        if self._append:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | nofollow)
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         nofollow, 0o600)
        self._file = io.open(fd, 'wb')

    def _keep_validator(self, validator):
        self._validator_written = True
        if not validator:
            return
        fd = os.open(self.validator_path, os.O_WRONLY | os.O_CREAT |
                     os.O_TRUNC | getattr(os, 'O_NOFOLLOW', 0), 0o600)
        with io.open(fd, 'w', encoding='utf-8') as out:
            out.write(six.text_type(json.dumps({'validator': validator})))

    def empty(self):
        self.close()
        self._append = False
        self._validator_written = False
        _discard(self.path, self.validator_path)

    def finish(self, validator=None):
        self.write(b'', validator)  # an empty file is a file too
        self.close()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


# ------------------------------------------------------------------- verify

def file_result(path, sha512=False):
    """A DownloadResult for a file already on disk (kept by an earlier run)."""
    hashes, size = Hashes.of_file(path, sha512)
    return hashes.result(path, size)


def name_checksum_of(md5_hex):
    """euca2ools 2.x's numeric name: CRC-32 of the MD5 hex digest text."""
    return zlib.crc32(md5_hex.lower().encode('ascii')) & 0xffffffff


def compare(result, image):
    """
    Check a :class:`DownloadResult` against what the store says of
    ``image`` (a CatalogImage's tarball, or a DiskImage): its size, SHA-256,
    SHA-512, MD5 and euca2ools 2.x checksum name, those it has.  Returns
    the names of the checks made and the descriptions of those that failed.
    """
    checks = []
    failures = []

    def check(what, expected, actual):
        checks.append(what)
        if expected != actual:
            failures.append('{0} should be {1} but is {2}'.format(
                what, expected, actual))

    if image.size is not None:
        check('size', image.size, result.size)
    if image.sha256 is not None:
        check('sha256', image.sha256, result.sha256.lower())
    if getattr(image, 'sha512', None) is not None and result.sha512:
        check('sha512', image.sha512, result.sha512.lower())
    if image.md5 is not None:
        check('md5', image.md5, result.md5.lower())
    if image.name_checksum is not None:
        check('name-checksum', image.name_checksum,
              name_checksum_of(result.md5))
    return checks, failures


def verify(result, image, name=None, what='tarball'):
    """
    :func:`compare`, for a download to use: returns the names of the checks
    made (empty: nothing could be checked).  On a mismatch the downloaded
    file (in the caller's own directory) is removed and
    :class:`IntegrityError` raised.  ``name``: the image's, for messages.
    """
    checks, failures = compare(result, image)
    if failures:
        if result.path:
            remove_if_present(result.path)
        raise IntegrityError(
            'the {0} downloaded for image "{1}" is not the one the store '
            'describes ({2}); {3}: run the command again to download it '
            'afresh, and if it fails again tell the store\'s operator'
            .format(what, name or image.name, '; '.join(failures),
                    'it was removed' if result.path else 'nothing was kept'))
    return checks
