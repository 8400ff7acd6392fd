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
    """A tarball could not be downloaded; the message says why."""


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


class _Hashes(object):
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
    hashes, done = _Hashes(), 0
    if os.path.exists(part_path):
        if expected_size is not None and \
                os.path.getsize(part_path) > expected_size:
            _remove(part_path)  # longer than the file: not a prefix of it
        else:
            hashes, done = _Hashes.of_file(part_path)
    use_range = True
    cuts = 0
    total = None
    while True:
        if expected_size is not None and 0 < expected_size == done:
            total = expected_size
            if progress is not None:
                progress(done, total)
            break  # an earlier run got every byte but stopped before rename
        headers = {'Accept-Encoding': 'identity'}
        resuming = done > 0 and use_range
        if resuming:
            headers['Range'] = 'bytes={0}-'.format(done)
        try:
            response = open_url(url, headers)
        except Exception as err:
            status = _status_of(err)
            if resuming and status == 416:
                # The .part does not fit the file the store has now.
                hashes, done, use_range = _Hashes(), 0, False
                continue
            if status in (404, 410):
                _remove(part_path)
            raise
        try:
            status = response.status_code
            if status == 206 and resuming:
                match = _CONTENT_RANGE_RE.match(
                    _header(response, 'Content-Range') or '')
                if not match or int(match.group(1)) != done:
                    # Not the bytes asked for: start over without Range.
                    hashes, done, use_range = _Hashes(), 0, False
                    continue
                total = int(match.group(3)) if match.group(3) != '*' \
                    else None
                mode = 'ab'
            elif status == 200:
                # A fresh start, or a server that ignores Range: either
                # way this body is the whole file.
                hashes, done = _Hashes(), 0
                total = _int_header(response, 'Content-Length')
                mode = 'wb'
            elif status == 416 and resuming:
                hashes, done, use_range = _Hashes(), 0, False
                continue
            elif status in (404, 410):
                _remove(part_path)
                raise DownloadError('the image store has no file at {0} '
                                    '({1}); check the catalog\'s url for '
                                    'this image'.format(url, status))
            else:
                raise DownloadError(
                    'the image store answered {0} {1} for {2}; try again '
                    'later or tell the store\'s operator'.format(
                        status, getattr(response, 'reason', '') or '', url)
                    .replace('  ', ' '))
            if expected_size is not None and total is not None and \
                    total != expected_size:
                raise IntegrityError(
                    'the image store serves {0} bytes at {1} but its '
                    'catalog says {2}; the store is inconsistent, tell its '
                    'operator (nothing more was downloaded)'.format(
                        total, url, expected_size))
            if progress is not None:
                progress(done, total if total is not None else expected_size)
            done, cut = _receive(response, part_path, mode, hashes, done,
                                 total, expected_size, progress)
        finally:
            _close(response)
        if total is not None and done > total:
            _remove(part_path)
            raise DownloadError(
                'the image store sent {0} bytes for {1}, more than the {2} '
                'it announced; try again later or tell the store\'s '
                'operator'.format(done, url, total))
        if cut is None and total is not None and done < total:
            cut = 'the body ended early'
        if cut is None:
            break
        cuts += 1
        if cuts > max_resumes:
            raise DownloadError(
                'the download of {0} was cut off {1} times (last: {2}); '
                '{3} of {4} bytes are kept in {5}: run the command again '
                'to resume'.format(url, cuts, cut, done,
                                   total if total is not None else '?',
                                   part_path))
        use_range = True
    _replace(part_path, dest_path)
    return DownloadResult(dest_path, done, hashes.md5.hexdigest(),
                          hashes.sha256.hexdigest())


def _replace(source, dest):
    # Atomic on POSIX: dest is the old good file or the new one, never half.
    getattr(os, 'replace', os.rename)(source, dest)


def _receive(response, part_path, mode, hashes, done, total, expected_size,
             progress):
    """Append the body to the .part; returns (bytes done, cut reason)."""
    shown_total = total if total is not None else expected_size
    with io.open(part_path, mode) as part:
        chunks = iter(_body_chunks(response))
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return done, None
            except _CUT_ERRORS as err:
                return done, '{0}: {1}'.format(type(err).__name__, err)
            if not chunk:
                continue
            part.write(chunk)
            hashes.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, shown_total)


# ------------------------------------------------------------------- verify

def file_result(path):
    """A DownloadResult for a file already on disk (kept by an earlier run)."""
    hashes, size = _Hashes.of_file(path)
    return DownloadResult(path, size, hashes.md5.hexdigest(),
                          hashes.sha256.hexdigest())


def name_checksum_of(md5_hex):
    """euca2ools 2.x's numeric name: CRC-32 of the MD5 hex digest text."""
    return zlib.crc32(md5_hex.lower().encode('ascii')) & 0xffffffff


def verify(result, image):
    """
    Check a :class:`DownloadResult` against what the catalog says of
    ``image`` (a :class:`eustore_plugin.catalog.CatalogImage`): its size,
    SHA-256, MD5 and euca2ools 2.x checksum name, those it has.  Returns
    the names of the checks made (empty: nothing could be checked).  On a
    mismatch the tarball is removed and :class:`IntegrityError` raised.
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
    if failures:
        _remove(result.path)
        raise IntegrityError(
            'the tarball downloaded for image "{0}" is not the one the '
            'catalog describes ({1}); it was removed: run the command again '
            'to download it afresh, and if it fails again tell the store\'s '
            'operator'.format(image.name, '; '.join(failures)))
    return checks
