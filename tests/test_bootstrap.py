# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The cloud's certificate from the bootstrap service, when none is
configured, as euca2ools 3.4 fetches it.  No real Eucalyptus bootstrap
service can run here, so a loopback stand-in of our own answers
DescribeServiceCertificates (tests/support/bootstrap.py); the install
itself goes to moto as in test_install.py.  Fingerprints are compared with
what openssl says of the certificate.
"""

from __future__ import absolute_import

import json
import os
import re
import textwrap

import pytest

from tests.support.bootstrap import BootstrapServer
from tests.support.commands import run_tool
from tests.support.http import self_signed_certificate
from tests.support.dryrun import checks
from tests.support.install import eucarc, install, installed_ids, store
from tests.support.moto import REGION

# The install fixtures (tests/support/install.py), used here.
INSTALL_FIXTURES = (eucarc, install, store)


def answers(keys):
    """What the service hands out: the cloud's bundling certificate among
    others of its."""
    user, cloud_keys = keys
    other = user.cert_pem.decode('ascii')
    return [('storage', 'image-bundling', other),
            ('compute', 'web-services', other),
            ('compute', 'image-bundling', cloud_keys.cert_pem.decode('ascii'))]


@pytest.fixture
def bootstrap(keys):
    server = BootstrapServer(answers(keys))
    yield server
    server.stop()


@pytest.fixture
def tls_bootstrap(keys, tmpdir):
    server = BootstrapServer(answers(keys), tls=self_signed_certificate(
        tmpdir.mkdir('tls')))
    yield server
    server.stop()


def openssl_fingerprint(path):
    """The SHA-256 fingerprint openssl gives the certificate in ``path``."""
    out = run_tool(['openssl', 'x509', '-noout', '-fingerprint', '-sha256',
                    '-in', path])
    return out.decode('ascii').strip().split('=', 1)[1]


def no_cloud_cert(bootstrap, tmpdir, **extra):
    return dict({'EUCALYPTUS_CERT': '', 'EUCA_BOOTSTRAP_URL': bootstrap.url,
                 'TMPDIR': str(tmpdir.mkdir('tmp'))}, **extra)


def test_the_cloud_certificate_comes_from_the_bootstrap_service(
        install, non_admin, store, bootstrap, install_cloud, tmpdir):
    env = no_cloud_cert(bootstrap, tmpdir)
    ids = installed_ids(install('-i', store.catalog['fedora']['name'], '-b',
                                'bootstrap-bundles', '--pad-name', env=env))
    assert list(ids) == ['image']
    (method, path, headers, params) = bootstrap.requests[0]
    assert (method, path) == ('POST', '/services/Empyrean/')
    assert params == {'Action': 'DescribeServiceCertificates',
                      'Format': 'pem', 'FingerprintDigest': 'SHA-256',
                      'Version': 'eucalyptus'}
    # Signed with SigV4 for the service "bootstrap".
    match = re.match(r'^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/'
                     r'bootstrap/aws4_request, SignedHeaders=([^,]+), '
                     r'Signature=[0-9a-f]{64}$', headers['authorization'])
    assert match, headers['authorization']
    assert match.group(1) == install_cloud.key_id
    assert match.group(3) == REGION
    assert 'host' in match.group(4).split(';')
    # The certificate was in a temporary file of the run's, gone now.
    assert os.listdir(env['TMPDIR']) == []


def test_bootstrap_url_from_the_region_configuration(
        install, non_admin, store, bootstrap, tmpdir):
    config = tmpdir.join('euca2ools.ini')
    config.write(textwrap.dedent('''
        [region {0}]
        bootstrap-url = {1}
        ''').format(REGION, bootstrap.url))
    result = install('--dry-run', '--region', REGION, '-i',
                     store.catalog['fedora']['name'], '-b', 'bootstrap-dry',
                     env={'EUCALYPTUS_CERT': '',
                          'EUCA_CONFIG_PATH': str(config)})
    assert result.returncode == 0, result
    assert checks(result)['bundling'][0][0] == 'OK'
    assert len(bootstrap.requests) == 1


def test_a_refusing_bootstrap_service_is_named(install, non_admin, store,
                                               bootstrap, tmpdir):
    bootstrap.status = 403
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'bootstrap-refused', env=no_cloud_cert(bootstrap,
                                                            tmpdir))
    assert result.returncode == 1
    (line,) = result.messages
    assert line.startswith("eustore-install-image: error: cannot fetch the "
                           "cloud's certificate: ")
    assert bootstrap.url in line
    assert '403' in line and 'euserv:DescribeServiceCertificates' in line
    assert '--ec2cert' in line


def test_no_bundling_certificate_in_the_answer(install, non_admin, store,
                                               bootstrap, tmpdir):
    bootstrap.certificates = bootstrap.certificates[:2]
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'bootstrap-none', env=no_cloud_cert(bootstrap, tmpdir))
    assert result.returncode == 1
    (line,) = result.messages
    assert 'gave no image-bundling certificate' in line
    assert bootstrap.url in line


def test_without_a_bootstrap_service_the_message_names_it(install, store):
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'bootstrap-missing', env={'EUCALYPTUS_CERT': ''})
    assert result.returncode == 1
    assert '"bootstrap-url" or EUCA_BOOTSTRAP_URL' in result.stderr


def test_a_plain_http_bootstrap_service_is_named_with_the_fingerprint(
        install, non_admin, store, bootstrap, keys, tmpdir):
    fingerprint = openssl_fingerprint(keys[1].cert_path)
    env = no_cloud_cert(bootstrap, tmpdir)
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'bootstrap-plain', '--pad-name', env=env)
    assert list(installed_ids(result)) == ['image']
    assert result.messages == [
        "eustore-install-image: warning: the cloud's certificate (SHA-256 "
        "{0}) came over plain http from {1}, so anyone on the way could "
        "have chosen it; use an https bootstrap-url, or give it with "
        "--ec2cert (set \"eustore-require-https-bootstrap\" to refuse)"
        .format(fingerprint, bootstrap.url)]
    debug = install('--dry-run', '--debug', '--pad-name', '-i',
                    store.catalog['fedora']['name'], '-b', 'bootstrap-plain',
                    env=env)
    assert debug.returncode == 0, debug
    assert 'using the cloud certificate from {0}, SHA-256 fingerprint {1}' \
        .format(bootstrap.url, fingerprint) in debug.stderr


def test_a_plain_http_bootstrap_service_refused_by_configuration(
        install, non_admin, store, bootstrap, tmpdir):
    config = tmpdir.join('euca2ools.ini')
    config.write('[global]\neustore-require-https-bootstrap = true\n')
    result = install('-i', store.catalog['fedora']['name'], '-b',
                     'bootstrap-plain-refused', env=no_cloud_cert(
                         bootstrap, tmpdir, EUCA_CONFIG_PATH=str(config)))
    assert result.returncode == 1
    assert result.messages == [
        "eustore-install-image: error: refusing to fetch the cloud's "
        "certificate over plain http from {0} (\"eustore-require-https-"
        "bootstrap\" is set): use an https bootstrap-url, or give the "
        "certificate with --ec2cert or EUCALYPTUS_CERT".format(bootstrap.url)]
    assert bootstrap.requests == []


def test_an_https_bootstrap_service_needs_no_warning(
        install, non_admin, store, tls_bootstrap, keys, tmpdir):
    config = tmpdir.join('euca2ools.ini')
    config.write('[global]\neustore-require-https-bootstrap = true\n')
    result = install('--dry-run', '--debug', '-i',
                     store.catalog['fedora']['name'], '-b', 'bootstrap-tls',
                     env=no_cloud_cert(tls_bootstrap, tmpdir,
                                       EUCA_CONFIG_PATH=str(config)))
    assert result.returncode == 0, result
    assert tls_bootstrap.url.startswith('https://')
    assert len(tls_bootstrap.requests) == 1
    assert 'plain http' not in result.stderr
    assert 'SHA-256 fingerprint {0}'.format(openssl_fingerprint(
        keys[1].cert_path)) in result.stderr


def test_json_names_the_certificate_the_service_gave(
        install, non_admin, store, bootstrap, keys, tmpdir):
    fingerprint = openssl_fingerprint(keys[1].cert_path)
    env = no_cloud_cert(bootstrap, tmpdir)
    name = store.catalog['fedora']['name']
    planned = install('--dry-run', '--json', '--pad-name', '-i', name, '-b',
                      'bootstrap-json', env=env)
    assert planned.returncode == 0, planned
    (bundling,) = [check for check in json.loads(planned.stdout)['checks']
                   if check['check'] == 'bundling']
    assert '(from {0}, SHA-256 {1})'.format(bootstrap.url, fingerprint) \
        in bundling['detail']
    result = install('--json', '--pad-name', '-i', name, '-b',
                     'bootstrap-json', env=env)
    assert result.returncode == 0, result
    for report in (planned, result):
        assert json.loads(report.stdout)['cloud_certificate'] == {
            'fingerprint': fingerprint, 'url': bootstrap.url}
    # A certificate the user gave is theirs: nothing to say of it.
    given = install('--dry-run', '--json', '--pad-name', '-i', name, '-b',
                    'bootstrap-json')
    assert 'cloud_certificate' not in json.loads(given.stdout)
