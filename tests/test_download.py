# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Downloading tarballs over real HTTP (tests/support/http.py on loopback, read
through the store service), with cuts, resumes and integrity checks.
"""

from __future__ import absolute_import

import binascii
import hashlib
import io
import json
import os
import re
import tarfile
import time

import pytest
from requestbuilder.config import ConfigData, ConfigView
import requests

from eustore_plugin.catalogs.catalog import Catalog, CatalogImage
from eustore_plugin.store.download import (ASK_WHOLE, CHUNK_SIZE, FAIL, READ,
                                           REPLACED, RESTART, DownloadError,
                                           DownloadResult, DownloadStream,
                                           IntegrityError, Pace, download,
                                           plan_answer, verify)
from eustore_plugin.store.reader import StoreError
from eustore_plugin.store.service import EustoreService
from tests.support.http import (ReplacedFile, StoreServer, cut_after, header,
                                serve)

TARBALL = 'starter-emis/euca-debian-6.0-x86_64.tgz'
PATH = '/' + TARBALL


def make_image_tarball(path):
    """A small real image tarball: incompressible, so ~200 KiB gzipped."""
    with tarfile.open(path, 'w:gz') as tar:
        for name, size in (('debian/debian.6-0.x86-64.img', 150000),
                           ('debian/vmlinuz-2.6.32', 40000),
                           ('debian/initrd.img-2.6.32', 20000)):
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    with open(path, 'rb') as tarball:
        return tarball.read()


@pytest.fixture
def data(store_dir):
    store_dir.mkdir('starter-emis')
    return make_image_tarball(str(store_dir.join(TARBALL)))


@pytest.fixture
def open_url(store, monkeypatch):
    """The store service's own open_url, pointed at the loopback store."""
    for proxy in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'):
        monkeypatch.delenv(proxy, raising=False)
    service = EustoreService(ConfigView(ConfigData([])), url=store.url,
                             max_retries=0, timeout=10)
    service.configure()
    return service.open_url


@pytest.fixture
def url(store, data):
    return store.url + TARBALL


@pytest.fixture
def dest(tmpdir):
    return str(tmpdir.join('euca-debian-6.0-x86_64.tgz'))


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def write(path, content):
    with open(path, 'wb') as handle:
        handle.write(content)


def ranges_asked(store):
    return [header(headers, 'Range') for method, path, headers
            in store.requests if path == PATH]


def assert_complete(result, dest, data):
    assert result == DownloadResult(dest, len(data),
                                    hashlib.md5(data).hexdigest(),
                                    hashlib.sha256(data).hexdigest())
    assert read(dest) == data
    assert not os.path.exists(dest + '.part')


# ------------------------------------------------- the resume planner alone

# What plan_answer makes of each answer that matters, without a server:
# (status, Content-Range, Content-Length, bytes held, Range sent, catalog
# size, can restart, same file) -> (action, bytes to skip, whole size, a
# fragment of the message or None).
SHORTER = 'shorter file than the part already read'
CHANGED = 'the file changed on the store while it was being read'
REFUSED = 'the store refused to resume the download (416)'
INCONSISTENT = 'serves {0} bytes but its catalog says 1000'
PLANS = [
    # A first request (nothing held, no Range sent).
    ('200 fresh', (200, None, '1000', 0, False, None, False, None),
     (READ, 0, 1000, None)),
    ('200 fresh, no length', (200, None, None, 0, False, None, False, None),
     (READ, 0, None, None)),
    ('200 fresh, length junk', (200, None, 'lots', 0, False, 1000, False,
                                None), (READ, 0, None, None)),
    ('200 fresh, catalog agrees', (200, None, '1000', 0, False, 1000, True,
                                   None), (READ, 0, 1000, None)),
    ('200 fresh, catalog disagrees', (200, None, '999', 0, False, 1000,
                                      False, None),
     (FAIL, 0, 999, INCONSISTENT.format(999))),
    ('206 to no Range', (206, 'bytes 0-999/1000', '1000', 0, False, None,
                         False, None), (FAIL, 0, None, None)),
    # A resume answered as asked.
    ('206 resumed', (206, 'bytes 400-999/1000', '600', 400, True, None,
                     False, None), (READ, 0, 1000, None)),
    ('206 resumed, odd spacing and case', (206, ' Bytes 400-999/1000 ',
                                           '600', 400, True, 1000, False,
                                           True), (READ, 0, 1000, None)),
    ('206 resumed, size unknown', (206, 'bytes 400-999/*', '600', 400, True,
                                   1000, False, None), (READ, 0, None, None)),
    ('206 resumed, catalog disagrees', (206, 'bytes 400-1199/1200', '800',
                                        400, True, 1000, True, None),
     (FAIL, 0, 1200, INCONSISTENT.format(1200))),
    # The rest of another file (If-Range ignored, as Ceph RGW 16 does):
    # never spliced to the held bytes.
    ('206 resumed, another file, can restart', (206, 'bytes 400-999/1000',
                                                '600', 400, True, 1000, True,
                                                False),
     (ASK_WHOLE, 0, None, None)),
    ('206 resumed, another file', (206, 'bytes 400-999/1000', '600', 400,
                                   True, 1000, False, False),
     (REPLACED, 0, None, CHANGED)),
    # A 206 for other bytes than asked: ask for the whole file instead.
    ('206 from the start', (206, 'bytes 0-999/1000', '1000', 400, True,
                            None, True, None), (ASK_WHOLE, 0, None, None)),
    ('206 without Content-Range', (206, None, '600', 400, True, None, False,
                                   None), (ASK_WHOLE, 0, None, None)),
    ('206 with junk Content-Range', (206, 'bytes=400-', '600', 400, True,
                                     None, False, None),
     (ASK_WHOLE, 0, None, None)),
    # A 200 to a resume: Range ignored, or (If-Range) the file replaced.
    ('200 to a resume, can restart', (200, None, '1000', 400, True, 1000,
                                      True, True), (RESTART, 0, 1000, None)),
    ('200 to a resume, changed, can restart', (200, None, '1000', 400, True,
                                               None, True, False),
     (RESTART, 0, 1000, None)),
    ('200 to a resume, restart, catalog disagrees', (200, None, '900', 400,
                                                     True, 1000, True, None),
     (FAIL, 0, 900, INCONSISTENT.format(900))),
    ('200 to a resume, same file', (200, None, '1000', 400, True, 1000, False,
                                    True), (READ, 400, 1000, None)),
    ('200 to a resume, validator unknown', (200, None, '1000', 400, True,
                                            None, False, None),
     (READ, 400, 1000, None)),
    ('200 to a resume, no length', (200, None, None, 400, True, None, False,
                                    None), (READ, 400, None, None)),
    ('200 to a resume, changed', (200, None, '1000', 400, True, 1000, False,
                                  False), (REPLACED, 0, None, CHANGED)),
    ('200 to a resume, changed and shorter', (200, None, '300', 400, True,
                                              None, False, False),
     (REPLACED, 0, None, CHANGED)),
    ('200 to a resume, shorter', (200, None, '300', 400, True, None, False,
                                  None), (REPLACED, 0, None, SHORTER)),
    # After ASK_WHOLE: no Range sent, but bytes held.
    ('200 to the whole-file request, can restart', (200, None, '1000', 400,
                                                    False, None, True, None),
     (RESTART, 0, 1000, None)),
    ('200 to the whole-file request', (200, None, '1000', 400, False, None,
                                       False, True), (READ, 400, 1000, None)),
    # 416: the held bytes reach past the file's end.
    ('416 to a resume, can restart', (416, 'bytes */300', '0', 400, True,
                                      None, True, None),
     (ASK_WHOLE, 0, None, None)),
    ('416 to a resume', (416, 'bytes */300', '0', 400, True, None, False,
                         None), (REPLACED, 0, None, REFUSED)),
    ('416 to no Range', (416, None, '0', 0, False, None, True, None),
     (FAIL, 0, None, None)),
    # Other statuses are the caller's to word.
    ('404', (404, None, '24', 0, False, None, False, None),
     (FAIL, 0, None, None)),
    ('404 to a resume', (404, None, '24', 400, True, None, True, None),
     (FAIL, 0, None, None)),
    ('304', (304, None, None, 400, True, None, False, True),
     (FAIL, 0, None, None)),
    ('503', (503, None, '0', 400, True, None, True, None),
     (FAIL, 0, None, None)),
]


@pytest.mark.parametrize('answer,expected', [row[1:] for row in PLANS],
                         ids=[row[0] for row in PLANS])
def test_plan_answer(answer, expected):
    (status, content_range, content_length, done, resumed, expected_size,
     can_restart, same_file) = answer
    plan = plan_answer(status, content_range, content_length, done, resumed,
                       expected_size, can_restart=can_restart,
                       same_file=same_file)
    action, skip, total, message = expected
    assert (plan.action, plan.skip, plan.total) == (action, skip, total)
    if message is None:
        assert plan.message is None
    else:
        assert message in plan.message
        # A sentence for the user: what happened and what to do.
        assert plan.message.endswith(('run the command again',
                                      'tell its operator (nothing more was '
                                      'downloaded)'))


# ---------------------------------------------------------------- downloads

def test_complete_download(store, open_url, url, dest, data):
    seen = []
    result = download(open_url, url, dest, expected_size=len(data),
                      progress=lambda done, total: seen.append((done, total)))
    assert_complete(result, dest, data)
    assert ranges_asked(store) == [None]
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) > 3  # reported as it went, not once at the end


def test_resume_from_an_earlier_part(store, open_url, url, dest, data):
    write(dest + '.part', data[:70001])
    seen = []
    result = download(open_url, url, dest,
                      progress=lambda done, total: seen.append((done, total)))
    assert ranges_asked(store) == ['bytes=70001-']
    assert seen[0] == (70001, len(data))
    assert_complete(result, dest, data)


def range_starts(store):
    return [int(re.match(r'bytes=(\d+)-$', asked).group(1)) if asked else 0
            for asked in ranges_asked(store)]


# A cut may cost the client the last partial chunk it was reading (urllib3
# 2.x drops it), so resumes start at most one chunk before the cut.
def test_cut_mid_body_resumes_byte_identical(store, open_url, url, dest,
                                             data):
    store.faults[PATH] = cut_after(data, 100000, times=1)
    result = download(open_url, url, dest)
    starts = range_starts(store)
    assert len(starts) == 2
    assert starts[0] == 0 and 100000 - CHUNK_SIZE < starts[1] <= 100000
    assert_complete(result, dest, data)


def test_a_cut_resumed_response_is_resumed_again(store, open_url, url, dest,
                                                 data):
    store.faults[PATH] = cut_after(data, 40000, times=3)
    result = download(open_url, url, dest, max_resumes=3)
    starts = range_starts(store)
    assert len(starts) == 4 and starts[0] == 0
    for before, after in zip(starts, starts[1:]):
        assert 40000 - CHUNK_SIZE < after - before <= 40000
    assert_complete(result, dest, data)


def test_too_many_cuts_keep_the_part_for_next_time(store, open_url, url,
                                                   dest, data):
    write(dest, b'the good old tarball')
    store.faults[PATH] = cut_after(data, 40000, times=100)
    with pytest.raises(DownloadError) as err:
        download(open_url, url, dest, max_resumes=2)
    assert len(ranges_asked(store)) == 3
    kept = read(dest + '.part')
    assert 3 * (40000 - CHUNK_SIZE) < len(kept) <= 3 * 40000
    assert kept == data[:len(kept)]
    message = str(err.value)
    assert 'cut off 3 times' in message
    assert '{0} of {1} bytes are kept in {2}.part'.format(
        len(kept), len(data), dest) in message
    assert 'run the command again to resume' in message
    assert read(dest) == b'the good old tarball'  # never replaced by a part
    del store.faults[PATH]
    result = download(open_url, url, dest)
    assert ranges_asked(store)[-1] == 'bytes={0}-'.format(len(kept))
    assert_complete(result, dest, data)


def test_server_ignoring_range_restarts_cleanly(store, open_url, url, dest,
                                                data):
    write(dest + '.part', b'\0' * 5000)  # not even a prefix of the file
    store.faults[PATH] = lambda handler, path: serve(handler, data,
                                                     honor_range=False)
    result = download(open_url, url, dest)
    assert ranges_asked(store) == ['bytes=5000-']
    assert_complete(result, dest, data)


def test_wrong_content_range_restarts_without_range(store, open_url, url,
                                                    dest, data):
    write(dest + '.part', b'\0' * 5000)

    def fault(handler, path):
        if handler.headers.get('Range'):
            # 206, but for bytes from 0: not what was asked for
            return serve(handler, data, honor_range=False, status=206,
                         content_range_start=0)
        return False
    store.faults[PATH] = fault
    result = download(open_url, url, dest)
    assert ranges_asked(store) == ['bytes=5000-', None]
    assert_complete(result, dest, data)


def test_part_that_does_not_fit_gets_416_and_restarts(store, open_url, url,
                                                      dest, data):
    write(dest + '.part', data + b'junk')
    result = download(open_url, url, dest)
    assert ranges_asked(store) == ['bytes={0}-'.format(len(data) + 4), None]
    assert_complete(result, dest, data)


def if_ranges_sent(store):
    return [header(headers, 'If-Range') for method, path, headers
            in store.requests if path == PATH]


def read_stream(open_url, url):
    stream = DownloadStream(open_url, url)
    try:
        return b''.join(stream.chunks())
    finally:
        stream.close()


# A store that honours If-Range sends the new file whole (200); one that
# ignores it, as Ceph RGW 16 does, sends the new file's rest (206), and only
# the answer's own validator tells.
IF_RANGE = [pytest.param(False, id='if-range-honoured'),
            pytest.param(True, id='if-range-ignored')]


@pytest.mark.parametrize('ignores_if_range', IF_RANGE)
@pytest.mark.parametrize('validator', ['ETag', 'Last-Modified'])
def test_a_file_replaced_after_a_cut_is_downloaded_afresh(
        store, open_url, url, dest, data, validator, ignores_if_range):
    new = data[::-1]
    fault = ReplacedFile(data, new, cut=50000, validator=validator,
                         ignores_if_range=ignores_if_range)
    store.faults[PATH] = fault
    result = download(open_url, url, dest)
    # The resume asked for the rest only if the file was still the first
    # answer's; the new file came whole, at once or when asked again.
    starts = range_starts(store)
    assert starts[0] == 0 and starts[1] > 0
    assert starts[2:] == ([0] if ignores_if_range else [])
    assert if_ranges_sent(store)[:2] == [None, fault.validator_of(0)]
    assert_complete(result, dest, new)


@pytest.mark.parametrize('ignores_if_range', IF_RANGE)
@pytest.mark.parametrize('validator', ['ETag', 'Last-Modified'])
def test_a_file_replaced_after_a_cut_fails_a_stream(
        store, open_url, url, data, validator, ignores_if_range):
    # A stream has given out its bytes already: it cannot start over.
    fault = ReplacedFile(data, data[::-1], cut=50000, validator=validator,
                         ignores_if_range=ignores_if_range)
    store.faults[PATH] = fault
    with pytest.raises(DownloadError) as err:
        read_stream(open_url, url)
    assert str(err.value) == (
        'the file changed on the store while it was being read; run the '
        'command again (at {0})'.format(url))
    assert if_ranges_sent(store) == [None, fault.validator_of(0)]


def test_a_416_to_a_resume_restarts_a_download(store, open_url, url, dest,
                                               data):
    # Replaced by a shorter file, with no validator to tell: the resume
    # starts past its end.
    new = data[:20000]
    store.faults[PATH] = ReplacedFile(data, new, cut=50000, validator=None)
    result = download(open_url, url, dest)
    assert ranges_asked(store)[1:] == [
        'bytes={0}-'.format(range_starts(store)[1]), None]
    assert if_ranges_sent(store) == [None, None, None]
    assert_complete(result, dest, new)


def test_a_416_to_a_resume_fails_a_stream_with_a_sentence(store, open_url,
                                                          url, data):
    store.faults[PATH] = ReplacedFile(data, data[:20000], cut=50000,
                                      validator=None)
    with pytest.raises(DownloadError) as err:
        read_stream(open_url, url)
    assert err.value.status_code == 416
    assert str(err.value) == (
        'the store refused to resume the download (416): the file on it is '
        'shorter than what was already read; run the command again (at {0})'
        .format(url))


def test_check_store_words_a_416_to_a_resume(cli, store, store_dir, url,
                                             data):
    store_dir.join('catalog').write(json.dumps({'images': [
        {'name': 'debian-6', 'url': TARBALL, 'architecture': 'x86_64'}]}))
    store.faults[PATH] = ReplacedFile(data, data[:20000], cut=50000,
                                      validator=None)
    result = cli('eustore-check-store', '-U', store.url)
    assert result.returncode == 1
    assert result.lines == [
        'FAILED\tdebian-6\tthe store refused to resume the download (416): '
        'the file on it is shorter than what was already read; run the '
        'command again (at {0})'.format(url)]


def test_complete_part_needs_no_request(store, open_url, url, dest, data):
    write(dest + '.part', data)
    seen = []
    result = download(open_url, url, dest, expected_size=len(data),
                      progress=lambda done, total: seen.append((done, total)))
    assert ranges_asked(store) == []
    assert seen == [(len(data), len(data))]
    assert_complete(result, dest, data)


def test_404_leaves_no_part_and_keeps_a_good_file(store, open_url, dest,
                                                  data):
    missing = store.url + 'starter-emis/gone.tgz'
    write(dest, b'the good old tarball')
    with pytest.raises(StoreError) as err:
        download(open_url, missing, dest)
    assert '404' in str(err.value) and missing in str(err.value)
    assert not os.path.exists(dest + '.part')
    assert read(dest) == b'the good old tarball'
    # A .part of a file the store no longer has is useless: removed.
    write(dest + '.part', b'old bytes')
    with pytest.raises(StoreError):
        download(open_url, missing, dest)
    assert not os.path.exists(dest + '.part')


def test_unreachable_store_keeps_the_part(tmpdir, open_url, dest, data):
    gone = StoreServer(str(tmpdir)).start()
    gone.stop()
    write(dest + '.part', data[:1234])
    with pytest.raises(StoreError) as err:
        download(open_url, gone.url + TARBALL, dest)
    assert 'cannot reach the image store' in str(err.value)
    assert read(dest + '.part') == data[:1234]


def test_plain_requests_open_url(store, url, dest, data):
    """An open_url that returns error responses instead of raising."""
    session = requests.Session()
    session.trust_env = False

    def open_url(target, headers):
        return session.get(target, headers=headers, stream=True, timeout=10)
    store.faults[PATH] = cut_after(data, 50000, times=1)
    assert_complete(download(open_url, url, dest), dest, data)
    with pytest.raises(DownloadError) as err:
        download(open_url, store.url + 'nothing.tgz', dest + '2')
    assert 'no file at {0}nothing.tgz (404)'.format(store.url) in \
        str(err.value)
    # A .part longer than the file: 416 answered, not raised; start over.
    write(dest + '.part', data + b'junk')
    os.remove(dest)
    assert_complete(download(open_url, url, dest), dest, data)
    assert ranges_asked(store)[-2:] == [
        'bytes={0}-'.format(len(data) + 4), None]
    store.faults['/broken.tgz'] = 503
    with pytest.raises(DownloadError) as err:
        download(open_url, store.url + 'broken.tgz', dest + '3')
    assert 'answered 503' in str(err.value)
    assert not [name for name in os.listdir(os.path.dirname(dest))
                if name.endswith('.part')]
    session.close()


def test_content_encoding_gzip_is_kept_as_sent(store, open_url, url, dest,
                                               data):
    # An S3 object with "Content-Encoding: gzip" metadata: requests would
    # hand back the tar inside, not the tarball the checksums are of.
    store.faults[PATH] = lambda handler, path: serve(
        handler, data, extra_headers=[('Content-Encoding', 'gzip')])
    result = download(open_url, url, dest)
    assert_complete(result, dest, data)
    assert header(store.requests[-1][2], 'Accept-Encoding') == 'identity'


def test_size_disagreeing_with_catalog_stops_early(store, open_url, url,
                                                   dest, data):
    with pytest.raises(IntegrityError) as err:
        download(open_url, url, dest, expected_size=len(data) + 1)
    assert 'serves {0} bytes'.format(len(data)) in str(err.value)
    assert 'catalog says {0}'.format(len(data) + 1) in str(err.value)
    assert not os.path.exists(dest)
    assert not os.path.exists(dest + '.part')


def test_local_file_url(store_dir, dest, data):
    # Only a store that is itself local may name local files.
    service = EustoreService(ConfigView(ConfigData([])),
                             url='file://' + str(store_dir))
    service.configure()
    url = 'file://' + str(store_dir.join(TARBALL))
    assert_complete(download(service.open_url, url, dest), dest, data)


# ------------------------------------------------------------------- verify

def checksum_name(tarball):
    """euca2ools 2.x's name for a tarball, computed here independently."""
    md5_hex = hashlib.md5(tarball).hexdigest()
    return '{0:010d}'.format(binascii.crc32(md5_hex.encode('ascii')) &
                             0xffffffff)


@pytest.fixture
def downloaded(tmpdir):
    path = str(tmpdir.join('image.tgz'))
    data = make_image_tarball(path)
    return DownloadResult(path, len(data), hashlib.md5(data).hexdigest(),
                          hashlib.sha256(data).hexdigest()), data


def test_verify_passes_every_check(downloaded):
    result, data = downloaded
    name = checksum_name(data)
    image = CatalogImage({'name': name, 'size': len(data),
                          'sha256': hashlib.sha256(data).hexdigest().upper(),
                          'md5': hashlib.md5(data).hexdigest()})
    assert verify(result, image) == ['size', 'sha256', 'md5', 'name-checksum']
    assert os.path.exists(result.path)
    # The 2.x catalogs also wrote the name as a JSON number, losing the
    # zero padding; it is the same checksum.
    catalog = Catalog.parse(json.dumps({'images': [{'name': int(name)}]}))
    assert verify(result, catalog.images[0]) == ['name-checksum']


@pytest.mark.parametrize('field', ['size', 'sha256', 'md5', 'name'])
def test_verify_mismatch_removes_the_tarball(downloaded, field):
    result, data = downloaded
    right = {'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
             'md5': hashlib.md5(data).hexdigest(),
             'name': checksum_name(data)}
    wrong = {'size': len(data) - 1, 'sha256': 'ab' * 32, 'md5': 'cd' * 16,
             'name': checksum_name(data + b'x')}
    entry = {'name': 'debian-6'}
    entry[field] = wrong[field]
    image = CatalogImage(entry)
    with pytest.raises(IntegrityError) as err:
        verify(result, image)
    message = str(err.value)
    check = 'name-checksum' if field == 'name' else field
    expected = int(wrong['name']) if field == 'name' else wrong[field]
    actual = int(right['name']) if field == 'name' else right[field]
    assert '{0} should be {1} but is {2}'.format(check, expected, actual) \
        in message
    assert 'for image "{0}"'.format(entry['name']) in message
    assert 'it was removed' in message and 'run the command again' in message
    assert '\n' not in message
    assert not os.path.exists(result.path)


def test_verify_with_nothing_to_check(downloaded):
    result, _ = downloaded
    image = CatalogImage({'name': 'debian-6', 'md5': 'not hex at all'})
    assert verify(result, image) == []
    assert os.path.exists(result.path)


def test_time_the_reader_spends_elsewhere_is_no_stall(store, open_url, url,
                                                      data):
    # A bundler waiting for its uploads reads nothing for a while: that is
    # not the store being slow, and the connection is not dropped.
    stream = DownloadStream(open_url, url, expected_size=len(data),
                            pace=Pace(1.0, 100 * 1024))
    received = []
    for chunk in stream.chunks():
        received.append(chunk)
        if len(received) <= 2:
            time.sleep(2.5)
    assert b''.join(received) == data
    assert stream.cuts == 0
    assert len(ranges_asked(store)) == 1
