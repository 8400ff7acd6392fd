# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Downloading an image tarball: streamed, resumable, and checked.

Tarballs are large and stores sit behind caches and flaky links, so
:func:`download`

- writes to ``<dest>.part`` and renames it to ``<dest>`` only when the body
  is complete, so a good file is never replaced by a partial one;
- resumes a ``.part`` left by an interrupted run, and a connection cut
  mid-body, with ``Range: bytes=N-`` (a 206 is used only when its
  Content-Range starts at N; a 200 means the server ignored the Range and
  the body is the whole file, so the download starts over; a 416 means the
  ``.part`` does not fit the file, so it starts over too);
- hashes (MD5 and SHA-256) as it writes, re-hashing an existing ``.part``
  first, so the file is read from the network once and never re-read;
- asks for ``Accept-Encoding: identity`` and, should a store still send the
  tarball with a Content-Encoding (an S3 object with ``Content-Encoding:
  gzip`` metadata does), keeps the bytes as sent: the catalog's checksums
  are of the .tar.gz, not of what a browser would unpack.

Errors from ``open_url`` (no such file, store unreachable) propagate as they
are; the ``.part`` is kept so that running again resumes, except after a 404
or 410, which say the file is gone.  A resumed ``.part`` is trusted to be a
prefix of the file the store serves now; if the store replaced the file in
between, the checksums :func:`verify` compares catch it.
"""

from __future__ import absolute_import

import collections
import errno
import hashlib
import io
import os
import re
import socket
import zlib

import requests.exceptions
import six
from six.moves import http_client

try:
    import urllib3.exceptions as _urllib3_exceptions
except ImportError:  # pragma: no cover - requests always brings urllib3
    from requests.packages.urllib3 import exceptions as _urllib3_exceptions


# Small enough that a cut loses little: with urllib3 2.x a read that hits
# the end of a cut body raises and drops the partial chunk it had buffered,
# so a resume fetches up to one chunk again.
CHUNK_SIZE = 16 * 1024
PART_SUFFIX = '.part'
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


class DownloadError(Exception):
    """
    A tarball could not be downloaded; the message says why, and
    ``status_code`` holds the store's HTTP status when it answered one.
    """

    def __init__(self, message, status_code=None):
        Exception.__init__(self, message)
        self.status_code = status_code


class IntegrityError(DownloadError):
    """A downloaded tarball is not the one the catalog describes."""


DownloadResult = collections.namedtuple('DownloadResult',
                                        'path size md5 sha256')


def _header(response, name):
    headers = getattr(response, 'headers', None) or {}
    value = headers.get(name)
    if value is None:  # a plain dict, as _LocalFileResponse has
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                return val
    return value


def _int_header(response, name):
    try:
        return int(_header(response, name))
    except (TypeError, ValueError):
        return None


def _status_of(err):
    """The HTTP status an open_url exception carries, if any."""
    for candidate in (getattr(err, 'status_code', None),
                      getattr(getattr(err, 'response', None), 'status_code',
                              None)):
        if isinstance(candidate, six.integer_types):
            return candidate
    return None


def _close(response):
    close = getattr(response, 'close', None)
    if close is not None:
        close()


def _remove(path):
    try:
        os.remove(path)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise


def _body_chunks(response):
    """The body's bytes exactly as sent, whatever its Content-Encoding."""
    encoding = (_header(response, 'Content-Encoding') or '').strip().lower()
    raw = getattr(response, 'raw', None)
    if encoding not in ('', 'identity') and hasattr(raw, 'stream'):
        # requests would undo the encoding; urllib3's stream need not.
        return raw.stream(CHUNK_SIZE, decode_content=False)
    return response.iter_content(CHUNK_SIZE)


class Hashes(object):
    """The MD5 and SHA-256 of the same bytes, fed as they pass."""

    def __init__(self):
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()

    def update(self, data):
        self.md5.update(data)
        self.sha256.update(data)

    @classmethod
    def of_file(cls, path):
        hashes = cls()
        size = 0
        with io.open(path, 'rb') as part:
            for chunk in iter(lambda: part.read(1 << 20), b''):
                hashes.update(chunk)
                size += len(chunk)
        return hashes, size


class _Restart(DownloadError):
    """The bytes held cannot be continued: a 416, or the whole file sent."""


class _TooManyCuts(DownloadError):
    pass


class _Overrun(DownloadError):
    """The store sent more than it announced: what was kept is suspect."""


class DownloadStream(object):
    """
    A tarball read straight off the network, as a file object: ``read()``
    gives its bytes in order and hashes them (MD5 and SHA-256) on the way.
    A connection cut mid-body is resumed with Range up to ``max_resumes``
    times; a server that answers a resumed request with the whole file has
    the bytes already given skipped (bytes given cannot be taken back),
    unless ``on_restart`` is given: then it is called, for a caller that
    can throw away what it holds, and the body is read from its start.
    ``offset`` and ``hashes`` continue a download whose first ``offset``
    bytes were had (and hashed) elsewhere.
    """

    def __init__(self, open_url, url, expected_size=None, progress=None,
                 max_resumes=5, offset=0, hashes=None, on_restart=None):
        self.on_restart = on_restart
        self.open_url = open_url
        self.url = url
        self.expected_size = expected_size
        self.progress = progress
        self.max_resumes = max_resumes
        self.done = offset
        self.hashes = hashes or Hashes()
        self.total = None
        self._response = None
        self._chunks = None
        self._skip = 0
        self._use_range = True
        self._cuts = 0
        self._pending = b''
        self._eof = False

    def _open(self):
        headers = {'Accept-Encoding': 'identity'}
        resuming = self.done > 0 and self._use_range
        if resuming:
            headers['Range'] = 'bytes={0}-'.format(self.done)
        try:
            response = self.open_url(self.url, headers)
        except Exception as err:
            if resuming and _status_of(err) == 416:
                raise _Restart('416')
            raise
        status = response.status_code
        skip = 0
        if status == 206 and resuming:
            match = _CONTENT_RANGE_RE.match(
                _header(response, 'Content-Range') or '')
            if not match or int(match.group(1)) != self.done:
                # Not the bytes asked for: ask again for the whole file.
                _close(response)
                self._use_range = False
                return self._open()
            total = int(match.group(3)) if match.group(3) != '*' else None
        elif status == 200:
            # A fresh start, or a server that ignores Range: the body is the
            # whole file, of which the first bytes were had already.
            if self.done and self.on_restart is not None:
                self.on_restart()
                self.done, self.hashes = 0, Hashes()
            skip = self.done
            total = _int_header(response, 'Content-Length')
        else:
            _close(response)
            if status == 416 and resuming:
                raise _Restart('416')
            if status in (404, 410):
                raise DownloadError(
                    'the image store has no file at {0} ({1}); check the '
                    'catalog\'s url for this image'.format(self.url, status),
                    status)
            raise DownloadError(
                'the image store answered {0} {1} for {2}; try again later '
                'or tell the store\'s operator'.format(
                    status, getattr(response, 'reason', '') or '', self.url)
                .replace('  ', ' '), status)
        if self.expected_size is not None and total is not None and \
                total != self.expected_size:
            _close(response)
            raise IntegrityError(
                'the image store serves {0} bytes at {1} but its catalog '
                'says {2}; the store is inconsistent, tell its operator '
                '(nothing more was downloaded)'.format(
                    total, self.url, self.expected_size))
        self.total = total
        self._response, self._skip = response, skip
        self._chunks = iter(_body_chunks(response))
        self._report()

    def _report(self):
        if self.progress is not None:
            self.progress(self.done, self.total if self.total is not None
                          else self.expected_size)

    def _resume_after(self, reason):
        _close(self._response)
        self._response = self._chunks = None
        self._cuts += 1
        self._use_range = True
        if self._cuts > self.max_resumes:
            raise _TooManyCuts('the download of {0} was cut off {1} times '
                               '(last: {2})'.format(self.url, self._cuts,
                                                    reason))

    def _next_chunk(self):
        """The next bytes of the file, or b'' at its end."""
        while not self._eof:
            if self._chunks is None:
                self._open()
            try:
                chunk = next(self._chunks)
            except StopIteration:
                if self.total is not None and self.done < self.total:
                    self._resume_after('the body ended early')
                    continue
                _close(self._response)
                self._eof = True
                break
            except _CUT_ERRORS as err:
                self._resume_after('{0}: {1}'.format(type(err).__name__, err))
                continue
            if self._skip:
                dropped = min(self._skip, len(chunk))
                chunk, self._skip = chunk[dropped:], self._skip - dropped
            if not chunk:
                continue
            self.done += len(chunk)
            if self.total is not None and self.done > self.total:
                _close(self._response)
                raise _Overrun(
                    'the image store sent {0} bytes for {1}, more than the '
                    '{2} it announced; try again later or tell the store\'s '
                    'operator'.format(self.done, self.url, self.total))
            self.hashes.update(chunk)
            self._report()
            return chunk
        return b''

    def read(self, size=-1):
        if size is None or size < 0:
            return self._pending + b''.join(iter(self._next_chunk, b''))
        while len(self._pending) < size:
            chunk = self._next_chunk()
            if not chunk:
                break
            self._pending += chunk
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def result(self, path=None):
        """What was read, once read to the end."""
        return DownloadResult(path, self.done, self.hashes.md5.hexdigest(),
                              self.hashes.sha256.hexdigest())

    def close(self):
        _close(self._response)


def download(open_url, url, dest_path, expected_size=None, progress=None,
             max_resumes=5):
    """
    Download ``url`` to ``dest_path`` (see the module's docstring) and
    return a :class:`DownloadResult`.  ``open_url(url, headers)`` returns a
    streamed response-like object (``status_code``, ``headers``,
    ``iter_content``) and raises on errors; ``expected_size`` is the
    catalog's size, if known; ``progress(bytes_done, total_or_None)`` is
    called as bytes arrive.  A connection cut mid-body is resumed up to
    ``max_resumes`` times.  Raises :class:`DownloadError`,
    :class:`IntegrityError`, or whatever ``open_url`` raises.
    """
    part_path = dest_path + PART_SUFFIX
    hashes, done = Hashes(), 0
    if os.path.exists(part_path):
        if expected_size is not None and \
                os.path.getsize(part_path) > expected_size:
            _remove(part_path)  # longer than the file: not a prefix of it
        else:
            hashes, done = Hashes.of_file(part_path)
    if expected_size is not None and 0 < expected_size == done:
        # An earlier run got every byte but stopped before the rename.
        if progress is not None:
            progress(done, expected_size)
        _replace(part_path, dest_path)
        return DownloadResult(dest_path, done, hashes.md5.hexdigest(),
                              hashes.sha256.hexdigest())
    while True:
        part = _PartFile(part_path, append=done > 0)
        stream = DownloadStream(open_url, url, expected_size, progress,
                                max_resumes, offset=done, hashes=hashes,
                                on_restart=part.empty)
        try:
            for chunk in iter(stream._next_chunk, b''):
                part.write(chunk)
            part.finish()
        except _Restart:
            # The .part does not fit the file the store has now.
            part.close()
            hashes, done = Hashes(), 0
            continue
        except _TooManyCuts as err:
            part.close()
            raise DownloadError(
                '{0}; {1} of {2} bytes are kept in {3}: run the command '
                'again to resume'.format(
                    err, stream.done, stream.total if stream.total is not None
                    else '?', part_path))
        except Exception as err:
            part.close()
            if _status_of(err) in (404, 410) or isinstance(err, _Overrun):
                _remove(part_path)
            raise
        break
    _replace(part_path, dest_path)
    return stream.result(dest_path)


class _PartFile(object):
    """
    The .part being written: opened at the first byte (a refused request
    leaves none), emptied when the store starts the file over.
    """

    def __init__(self, path, append):
        self.path = path
        self._mode = 'ab' if append else 'wb'
        self._file = None

    def write(self, data):
        if self._file is None:
            self._file = io.open(self.path, self._mode)
        self._file.write(data)

    def empty(self):
        self.close()
        self._mode = 'wb'
        _remove(self.path)

    def finish(self):
        self.write(b'')  # an empty file is a file too
        self.close()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _replace(source, dest):
    # Atomic on POSIX: dest is the old good file or the new one, never half.
    getattr(os, 'replace', os.rename)(source, dest)


# ------------------------------------------------------------------- verify

def file_result(path):
    """A DownloadResult for a file already on disk (kept by an earlier run)."""
    hashes, size = Hashes.of_file(path)
    return DownloadResult(path, size, hashes.md5.hexdigest(),
                          hashes.sha256.hexdigest())


def name_checksum_of(md5_hex):
    """euca2ools 2.x's numeric name: CRC-32 of the MD5 hex digest text."""
    return zlib.crc32(md5_hex.lower().encode('ascii')) & 0xffffffff


def compare(result, image):
    """
    Check a :class:`DownloadResult` against what the catalog says of
    ``image`` (a :class:`eustore_plugin.catalog.CatalogImage`): its size,
    SHA-256, MD5 and euca2ools 2.x checksum name, those it has.  Returns
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
    if image.md5 is not None:
        check('md5', image.md5, result.md5.lower())
    if image.name_checksum is not None:
        check('name-checksum', image.name_checksum,
              name_checksum_of(result.md5))
    return checks, failures


def verify(result, image):
    """
    :func:`compare`, for a download to use: returns the names of the checks
    made (empty: nothing could be checked).  On a mismatch the tarball is
    removed and :class:`IntegrityError` raised.
    """
    checks, failures = compare(result, image)
    if failures:
        if result.path:
            _remove(result.path)
        raise IntegrityError(
            'the tarball downloaded for image "{0}" is not the one the '
            'catalog describes ({1}); {2}: run the command again to download '
            'it afresh, and if it fails again tell the store\'s operator'
            .format(image.name, '; '.join(failures),
                    'it was removed' if result.path else 'nothing was kept'))
    return checks
