# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-describe-images as a user runs it, against real stores on loopback:
an HTTP server, an HTTPS one, and plain directories.
"""

from __future__ import absolute_import

import hashlib
import json
import os.path
import re
import textwrap
import zlib

import pytest

from tests.support.catalogs import put_catalog
from tests.support.http import StoreServer, self_signed_certificate

DESCRIBE = 'eustore-describe-images'
SEED_LINES = [
    'centos-x86_64-20120114\tcentos\tx86_64\t2012.1.14\t\t'
    'CentOS 5 1.3GB root, Single Kernel',
    'debian-x86_64-20120114\tdebian\tx86_64\t2012.1.14\t\t'
    'Debian 6 1.3GB root, Single Kernel']


def test_seed_catalog_one_line_per_image(cli, store, store_dir):
    put_catalog(store_dir, 'seed-catalog.json')
    result = cli(DESCRIBE, '-U', store.url)
    assert result.returncode == 0, result
    assert result.lines == SEED_LINES
    # The seed's store predates signatures: nothing but that is said.
    assert result.stderr.splitlines() == [
        'eustore-describe-images: warning: the catalog at {0}catalog is not '
        'signed, so the images it lists cannot be verified'.format(store.url)]
    assert store.paths_requested() == ['/catalog', '/catalog.asc']


def test_verbose_adds_date_stamp_recipe_contact(cli, store, store_dir):
    put_catalog(store_dir, 'seed-catalog.json')
    result = cli(DESCRIBE, '-U', store.url, '-v')
    assert result.lines[0].split('\t')[6:] == [
        '20120114150503', '28fc-4826', 'centos-based',
        'images@lists.eucalyptus.com']
    assert all(len(line.split('\t')) == 10 for line in result.lines)


def test_euca2ools2_catalog(cli, store, store_dir):
    put_catalog(store_dir, 'euca2ools2-catalog.json')
    result = cli(DESCRIBE, '-U', store.url)
    assert result.returncode == 0, result
    assert result.lines == [
        '1234567890\tcentos\ti386\t2011.07.02\txen,kvm\t'
        'CentOS 5 1.3GB root, Hypervisor-Specific Kernels',
        '0987654321\tdebian\tx86_64\t2012.1.14\txen,kvm\t'
        'Debian 6 1.3GB root, Single Kernel',
        'fedora-hvm\tfedora\tx86_64\t20\tkvm\tFedora, whole-disk HVM image']


def test_filters(cli, store, store_dir):
    put_catalog(store_dir, 'euca2ools2-catalog.json')

    def names(*args):
        result = cli(DESCRIBE, '-U', store.url, *args)
        assert result.returncode == 0, result
        return [line.split('\t')[0] for line in result.lines]

    assert names('--os', 'centos') == ['1234567890']
    assert names('-a', 'x86_64') == ['0987654321', 'fedora-hvm']
    assert names('--architecture', 'x86_64', '--os', 'debian') == [
        '0987654321']
    assert names('--name', 'fed*', '--name', '1*') == [
        '1234567890', 'fedora-hvm']
    assert names('--os', 'plan9') == []


def test_json_output(cli, store, store_dir):
    put_catalog(store_dir, 'euca2ools2-catalog.json')
    result = cli(DESCRIBE, '-U', store.url, '--json', '--os', 'debian')
    images = json.loads(result.stdout)
    assert len(images) == 1
    assert images[0]['name'] == '0987654321'
    assert images[0]['hypervisors'] == ['xen', 'kvm']
    assert images[0]['single_kernel'] is True
    assert images[0]['build-host'] == 'builder7'
    assert images[0]['location'] == 'http://mirror.example.com/debian.tgz'


def test_falls_back_to_catalog_json(cli, store, store_dir):
    put_catalog(store_dir, 'seed-catalog.json', name='catalog.json')
    result = cli(DESCRIBE, '-U', store.url.rstrip('/'))
    assert result.lines == SEED_LINES
    assert store.paths_requested() == ['/catalog', '/catalog.json',
                                       '/catalog.json.asc']


def test_url_naming_a_json_file_is_the_catalog(cli, store, store_dir):
    store_dir.mkdir('sub')
    put_catalog(store_dir, 'seed-catalog.json', name='sub/images.json')
    result = cli(DESCRIBE, '-U', store.url + 'sub/images.json', '--json')
    assert store.paths_requested() == ['/sub/images.json',
                                       '/sub/images.json.asc']
    # Tarball URLs resolve beside the catalog.
    assert json.loads(result.stdout)[0]['location'] == (
        store.url + 'sub/starter-emis/euca-centos-2012.1.14-x86_64.tgz')


def test_local_directory_and_file_url(cli, store_dir):
    put_catalog(store_dir, 'seed-catalog.json', name='catalog.json')
    by_path = cli(DESCRIBE, '-U', str(store_dir))
    by_url = cli(DESCRIBE, '-U', 'file://' + str(store_dir) + '/')
    relative = cli(DESCRIBE, '-U', 'store', cwd=os.path.dirname(
        str(store_dir)))
    assert by_path.lines == by_url.lines == relative.lines == SEED_LINES


def test_a_local_file_is_the_document_it_holds_whatever_its_name(
        cli, store_dir):
    put_catalog(store_dir, 'seed-catalog.json', name='mycatalog')
    store_dir.join('templates').write(textwrap.dedent('''\
        [cirros-0.6]
        name=CirrOS 0.6
        arch=x86_64
        file=cirros-0.6.xz
        checksum[sha512]={0}
        '''.format('8e' * 64)))
    parent = os.path.dirname(str(store_dir))
    relative = cli(DESCRIBE, '-U', 'store/mycatalog', '--json', cwd=parent)
    by_url = cli(DESCRIBE, '-U', 'file://' + str(store_dir.join('mycatalog')))
    assert by_url.lines == SEED_LINES, by_url.stderr
    # Tarballs are beside the file, as beside a catalog of any name.
    assert json.loads(relative.stdout)[0]['location'] == (
        'file://' + str(store_dir) +
        '/starter-emis/euca-centos-2012.1.14-x86_64.tgz')
    # The kind comes from the content: this one is a virt-builder index.
    index = cli(DESCRIBE, '-U', str(store_dir.join('templates')))
    assert [line.split('\t')[0] for line in index.lines] == ['cirros-0.6']


def test_a_local_directory_is_one_whatever_its_name(cli, store_dir):
    # Named like a catalog, but a directory: its catalog is inside.
    inside = store_dir.mkdir('images.json')
    put_catalog(inside, 'seed-catalog.json')
    assert cli(DESCRIBE, '-U', str(inside)).lines == SEED_LINES


def test_store_url_from_environment(cli, store, store_dir):
    put_catalog(store_dir, 'seed-catalog.json')
    result = cli(DESCRIBE, env={'EUSTORE_URL': store.url})
    assert result.lines == SEED_LINES


def test_store_url_from_region_config(cli, store, store_dir, tmpdir):
    put_catalog(store_dir, 'seed-catalog.json')
    config = tmpdir.join('euca2ools.ini')
    config.write(textwrap.dedent('''
        [region lab]
        ec2-url = http://127.0.0.1:1/services/compute
        eustore-url = {0}
        ''').format(store.url))
    env = {'EUCA_CONFIG_PATH': str(config)}
    assert cli(DESCRIBE, '--region', 'lab', env=env).lines == SEED_LINES
    # The command line still wins over the configuration.
    result = cli(DESCRIBE, '--region', 'lab', '-U', store.url + 'nowhere/',
                 env=env)
    assert result.returncode == 1
    assert store.url + 'nowhere/catalog' in result.stderr


def test_skipped_entries_are_warned_about(cli, store, store_dir):
    store_dir.join('catalog').write(json.dumps({'images': [
        {'name': 'ok', 'os': 'linux'}, 7, {'os': 'nameless'}]}))
    result = cli(DESCRIBE, '-U', store.url)
    assert result.returncode == 0
    assert result.lines == ['ok\tlinux\t\t\t\t']
    assert result.messages == [
        DESCRIBE + ': warning: skipped catalog entry 2: not a JSON object',
        DESCRIBE + ': warning: skipped catalog entry 3: it has no name']


def assert_one_line_error(result, *fragments):
    assert result.returncode == 1, result
    assert result.stdout == ''
    lines = result.messages
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(DESCRIBE + ': error: ')
    assert 'Traceback' not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unreachable_store(cli):
    result = cli(DESCRIBE, '-U', 'http://127.0.0.1:1/store/')
    assert_one_line_error(result, 'cannot reach the image store at '
                          'http://127.0.0.1:1/store/catalog')


STORE_CHOICE = ('-U URL, EUSTORE_URL or the "eustore-url" option',
                'eustore catalogs, simplestreams mirrors and virt-builder '
                'indexes')


def test_an_unreachable_default_store_says_how_to_choose_one(cli):
    # No -U, EUSTORE_URL or eustore-url: the built-in default, which cannot
    # be reached through a proxy that takes no connections (so that the
    # test is the same with a network or without).
    proxy = {'http_proxy': 'http://127.0.0.1:1',
             'HTTP_PROXY': 'http://127.0.0.1:1'}
    result = cli(DESCRIBE, env=proxy)
    assert_one_line_error(result, 'cannot reach the image store at '
                          'http://emis.eucalyptus.com/catalog',
                          'http://emis.eucalyptus.com/ is the built-in '
                          'default store', *STORE_CHOICE)
    # A store the user chose is theirs to fix.
    result = cli(DESCRIBE, '-U', 'http://127.0.0.1:1/store/', env=proxy)
    assert_one_line_error(result, 'cannot reach the image store')
    assert not any(part in result.stderr for part in STORE_CHOICE)


def test_no_catalog_names_both_urls(cli, store):
    result = cli(DESCRIBE, '-U', store.url)
    assert_one_line_error(result, store.url + 'catalog (404) or ' +
                          store.url + 'catalog.json (404)',
                          'check the store URL')


def test_http_errors(cli, store):
    store.faults['/catalog'] = 502
    result = cli(DESCRIBE, '-U', store.url)
    assert_one_line_error(result, 'answered 502', store.url + 'catalog')
    # S3 answers 403 for a file an anonymous reader may not see or that is
    # not there: the other catalog name is tried, and the error says both.
    store.faults['/catalog'] = 403
    result = cli(DESCRIBE, '-U', store.url)
    assert_one_line_error(result, store.url + 'catalog (403) or ' +
                          store.url + 'catalog.json (404)', 'public-read')


def test_server_errors_are_retried(cli, store, store_dir, tmpdir):
    put_catalog(store_dir, 'seed-catalog.json')
    answers = [500]

    def fail_once(handler, path):
        if answers:
            handler.send_body(answers.pop(), b'busy')
            return True
        return False

    store.faults['/catalog'] = fail_once
    result = cli(DESCRIBE, '-U', store.url)
    assert result.lines == SEED_LINES
    assert store.paths_requested() == ['/catalog', '/catalog',
                                       '/catalog.asc']


def test_persistent_server_error(cli, store, tmpdir):
    store.faults['/catalog'] = 500
    config = tmpdir.join('fast.ini')
    config.write('[global]\nmax-retries = 0\n')
    result = cli(DESCRIBE, '-U', store.url,
                 env={'EUCA_CONFIG_PATH': str(config)})
    assert_one_line_error(result, 'answered 500', store.url + 'catalog')


@pytest.mark.parametrize('body,complaint', [
    (b'<html>maintenance</html>', 'is not valid JSON'),
    (b'{"imgs": []}', 'has no "images" list')])
def test_bad_catalog_documents(cli, store, store_dir, body, complaint):
    store_dir.join('catalog').write(body, mode='wb')
    result = cli(DESCRIBE, '-U', store.url)
    assert_one_line_error(result, complaint, store.url + 'catalog')


@pytest.fixture
def tls_store(store_dir, tmpdir):
    cert, key = self_signed_certificate(tmpdir)
    server = StoreServer(str(store_dir), tls=(cert, key)).start()
    server.certificate = cert
    yield server
    server.stop()


def test_tls_failure_is_explained(cli, tls_store, store_dir):
    put_catalog(store_dir, 'seed-catalog.json')
    result = cli(DESCRIBE, '-U', tls_store.url)
    assert_one_line_error(result, 'TLS verification failed',
                          tls_store.url + 'catalog', 'REQUESTS_CA_BUNDLE')


def test_tls_with_the_stores_ca_trusted(cli, tls_store, store_dir):
    put_catalog(store_dir, 'seed-catalog.json')
    result = cli(DESCRIBE, '-U', tls_store.url,
                 env={'REQUESTS_CA_BUNDLE': tls_store.certificate})
    assert result.lines == SEED_LINES


def test_debug_shows_traceback(cli):
    result = cli(DESCRIBE, '-U', 'http://127.0.0.1:1/', '--debug')
    assert result.returncode != 0
    assert 'Traceback' in result.stderr
    assert cli(DESCRIBE, '-U', 'http://127.0.0.1:1/', '-D').returncode != 0


def test_secrets_never_reach_output(cli, store, store_dir):
    put_catalog(store_dir, 'seed-catalog.json')
    secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
    result = cli(DESCRIBE, '-U', store.url, '--debug', '-I', 'AKIDEXAMPLE',
                 '-S', secret)
    assert result.returncode == 0
    assert 'parsed arguments' in result.stderr  # debugging really was on
    assert secret not in result.stdout + result.stderr


def test_version_names_the_plugin(cli):
    result = cli(DESCRIBE, '--version')
    assert result.returncode == 0
    assert 'eustore-plugin ' in result.stdout + result.stderr


def test_help_shows_the_seeds_options(cli):
    result = cli(DESCRIBE, '--help')
    assert result.returncode == 0
    # Python 3.13's argparse writes "-U, --url URL", older ones
    # "-U URL, --url URL": look for the option strings themselves.
    shown = set(re.findall(r'(?<![\w-])(--?[a-zA-Z][\w-]*)', result.stdout))
    assert shown >= set([
        '-h', '--help', '-v', '--verbose', '-D', '--debug', '--debugger',
        '-U', '--url', '--region', '-I', '--access-key-id', '-S',
        '--secret-key', '--version', '--json', '--os', '-a',
        '--architecture', '--name'])


def test_demo_store_lists_its_three_images(cli, demo_store_dir):
    store = demo_store_dir
    result = cli(DESCRIBE, '-U', store, '--json')
    images = json.loads(result.stdout)
    assert [image['os'] for image in images] == ['centos', 'debian',
                                                 'fedora']
    for image in images:
        with open(os.path.join(store, image['url']), 'rb') as tarball:
            data = tarball.read()
        assert hashlib.sha256(data).hexdigest() == image['sha256']
        assert len(data) == image['size']
    # The Debian image carries a euca2ools 2.x checksum name.
    with open(os.path.join(store, images[1]['url']), 'rb') as tarball:
        md5_hex = hashlib.md5(tarball.read()).hexdigest()
    assert int(images[1]['name']) == zlib.crc32(
        md5_hex.encode('ascii')) & 0xffffffff
