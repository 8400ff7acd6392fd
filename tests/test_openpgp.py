# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Catalog signatures: made by eustore_plugin.openpgp with gpg, checked with
gpgv against key files, and cross-checked with plain ``gpg --verify`` so the
format is the standard one, not merely one this module agrees with itself
on.
"""

from __future__ import absolute_import

import os
import os.path
import re
import tempfile

import pytest

from eustore_plugin import openpgp
from eustore_plugin.openpgp import (MissingToolError, SignatureError,
                                    dearmor, is_armored_public_key,
                                    sign_detached, verify_detached)
from tests.support.gpg import GpgHome, GpgKey, gpg, missing_tools


MISSING = missing_tools()
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason='{0} not installed: run scripts/setup (Debian '
    'packages gnupg and gpgv)'.format(', '.join(MISSING)))

# Not ASCII, no final newline, a CR: a signature is over bytes, not text.
CATALOG = (b'{"format": "1.0", "images": [{"name": "centos \xc3\xa9"}]}\r\n'
           b'\x00\xff')


def write(directory, name, data):
    path = str(directory.join(name))
    with open(path, 'wb') as out:
        out.write(data)
    return path


def read(path):
    with open(path, 'rb') as source:
        return source.read()


@pytest.fixture(scope='module')
def keydir(tmpdir_factory):
    return tmpdir_factory.mktemp('keys')


@pytest.fixture(scope='module')
def trusted(keydir):
    key = GpgKey(str(keydir), 'Trusted Publisher', 'trusted@example.com')
    yield key
    key.close()


@pytest.fixture(scope='module')
def stranger(keydir):
    key = GpgKey(str(keydir), 'Some Stranger', 'stranger@example.com')
    yield key
    key.close()


@pytest.fixture(scope='module')
def trusted_asc(trusted, keydir):
    return trusted.export_armored(str(keydir.join('trusted.asc')))


@pytest.fixture(scope='module')
def trusted_gpg(trusted, keydir):
    return trusted.export_binary(str(keydir.join('trusted.gpg')))


@pytest.fixture(scope='module')
def stranger_asc(stranger, keydir):
    return stranger.export_armored(str(keydir.join('stranger.asc')))


@pytest.fixture(scope='module')
def signature(trusted):
    return trusted.sign(CATALOG)


# ---------------------------------------------------------------------------
# Signing

def test_sign_detached_makes_one_armored_signature(signature):
    assert signature.startswith(b'-----BEGIN PGP SIGNATURE-----\n')
    assert signature.rstrip().endswith(b'-----END PGP SIGNATURE-----')
    assert signature.count(b'-----BEGIN') == 1
    assert CATALOG not in signature  # detached: the data is not inside


def test_plain_gpg_verify_accepts_the_signature(signature, trusted,
                                                trusted_asc, tmpdir):
    verifier = GpgHome(str(tmpdir), 'verifier')
    try:
        verifier.gpg('--import', trusted_asc)
        out = verifier.gpg('--status-fd', '1', '--verify',
                           write(tmpdir, 'catalog.asc', signature),
                           write(tmpdir, 'catalog', CATALOG))
    finally:
        verifier.close()
    assert re.search(br'^\[GNUPG:\] GOODSIG ', out, re.M)
    assert re.search(br'^\[GNUPG:\] VALIDSIG .* ' +
                     trusted.fingerprint.encode('ascii') + b'$', out, re.M)


def test_sign_with_unknown_key_says_which_and_what_to_do(trusted):
    with pytest.raises(SignatureError) as caught:
        sign_detached(CATALOG, key_id='nobody@example.com',
                      gnupg_home=trusted.home)
    message = str(caught.value)
    assert 'nobody@example.com' in message
    assert '--sign-key' in message and 'GNUPGHOME' in message
    assert '\n' not in message


def test_sign_with_empty_home_fails_instead_of_prompting(tmpdir):
    empty = GpgHome(str(tmpdir), 'empty')
    try:
        with pytest.raises(SignatureError) as caught:
            sign_detached(CATALOG, gnupg_home=empty.home)
    finally:
        empty.close()
    assert 'could not sign' in str(caught.value)


def test_sign_with_locked_key_fails_instead_of_waiting(tmpdir):
    key = GpgKey(str(tmpdir), 'Locked Key', 'locked@example.com',
                 passphrase='correct horse')
    try:
        with pytest.raises(SignatureError) as caught:
            sign_detached(CATALOG, gnupg_home=key.home)
    finally:
        key.close()
    assert 'needs its passphrase' in str(caught.value)


# ---------------------------------------------------------------------------
# Verifying: good signatures

def test_verifies_with_armored_key_file(signature, trusted, trusted_asc):
    fingerprint = verify_detached(CATALOG, signature, [trusted_asc])
    assert fingerprint == trusted.fingerprint
    assert re.match(r'^[0-9A-F]{40}$', fingerprint)


def test_verifies_with_binary_key_file(signature, trusted, trusted_gpg):
    assert verify_detached(CATALOG, signature,
                           [trusted_gpg]) == trusted.fingerprint


def test_verifies_a_binary_signature(signature, trusted, trusted_asc):
    binary = gpg(trusted.home, '--dearmor', input=signature)
    assert not binary.startswith(b'-----')
    assert verify_detached(CATALOG, binary,
                           [trusted_asc]) == trusted.fingerprint


def test_signer_in_second_key_file(signature, trusted, trusted_gpg,
                                   stranger_asc):
    assert verify_detached(CATALOG, signature,
                           [stranger_asc, trusted_gpg]) == trusted.fingerprint


@pytest.fixture(params=['two armor blocks', 'one armor block',
                        'binary keyring'])
def two_key_file(request, trusted_asc, stranger_asc, trusted, tmpdir):
    if request.param == 'two armor blocks':
        data = read(stranger_asc) + b'\n' + read(trusted_asc)
    else:
        both = GpgHome(str(tmpdir), 'both')
        try:
            both.gpg('--import', stranger_asc, trusted_asc)
            armor = ['--armor'] if request.param == 'one armor block' else []
            data = both.gpg(*(armor + ['--export']))
        finally:
            both.close()
        if armor:
            assert data.count(b'-----BEGIN PGP PUBLIC KEY BLOCK') == 1
    return write(tmpdir, 'two-keys', data)


def test_file_holding_two_keys(two_key_file, trusted, stranger, signature):
    assert verify_detached(CATALOG, signature,
                           [two_key_file]) == trusted.fingerprint
    assert verify_detached(CATALOG, stranger.sign(CATALOG),
                           [two_key_file]) == stranger.fingerprint


def test_returns_primary_fingerprint_for_signing_subkey(tmpdir):
    key = GpgKey(str(tmpdir), 'Sub Key', 'sub@example.com')
    try:
        key.gpg('--passphrase', '', '--quick-add-key', key.fingerprint,
                'ed25519', 'sign')
        colons = key.gpg('--with-colons', '--list-keys', key.fingerprint)
        fingerprints = [line.split(b':')[9].decode('ascii')
                        for line in colons.splitlines()
                        if line.startswith(b'fpr:')]
        # gpg signs with the newest signing subkey, not the primary key.
        status = key.gpg('--status-fd', '1', '--armor', '--detach-sign',
                         '--output', os.devnull, input=CATALOG)
        signature = key.sign(CATALOG)
        key_file = key.export_binary(str(tmpdir.join('sub.gpg')))
    finally:
        key.close()
    assert len(fingerprints) == 2
    assert fingerprints[1].encode('ascii') in status
    assert verify_detached(CATALOG, signature, [key_file]) == key.fingerprint


def test_one_good_signature_among_several_is_enough(
        signature, trusted, stranger, trusted_asc, stranger_asc):
    both = (gpg(trusted.home, '--dearmor', input=signature) +
            gpg(stranger.home, '--dearmor', input=stranger.sign(CATALOG)))
    assert verify_detached(CATALOG, both, [trusted_asc]) == \
        trusted.fingerprint
    assert verify_detached(CATALOG, both, [stranger_asc]) == \
        stranger.fingerprint


# ---------------------------------------------------------------------------
# Verifying: what must fail

def test_altered_data_is_a_bad_signature(signature, trusted_asc):
    altered = bytearray(CATALOG)
    altered[10] ^= 0x01
    with pytest.raises(SignatureError) as caught:
        verify_detached(bytes(altered), signature, [trusted_asc])
    assert str(caught.value).startswith(
        'bad signature: the catalog was altered after it was signed')


def test_bad_signature_by_a_trusted_key_wins_over_a_good_one(
        trusted, stranger, trusted_asc, stranger_asc):
    altered = CATALOG + b' '
    both = (gpg(trusted.home, '--dearmor', input=trusted.sign(altered)) +
            gpg(stranger.home, '--dearmor', input=stranger.sign(CATALOG)))
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, both, [trusted_asc, stranger_asc])
    assert 'bad signature' in str(caught.value)


def test_signature_by_untrusted_key(stranger, trusted_asc, trusted_gpg):
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, stranger.sign(CATALOG),
                        [trusted_asc, trusted_gpg])
    message = str(caught.value)
    assert 'not among the trusted keys' in message
    assert stranger.fingerprint[-16:] in message
    assert trusted_asc in message and trusted_gpg in message


@pytest.mark.parametrize('garbage', [
    b'this is not a signature\n', b'',
    b'-----BEGIN PGP SIGNATURE-----\n\nbm90IGEgc2lnbmF0dXJl\n'
    b'-----END PGP SIGNATURE-----\n',
], ids=['text', 'empty', 'armored-garbage'])
def test_garbage_signature(garbage, trusted_asc):
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, garbage, [trusted_asc])
    assert 'not an OpenPGP signature' in str(caught.value)


def test_public_key_as_signature(trusted_asc):
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, read(trusted_asc), [trusted_asc])
    assert 'not an OpenPGP signature' in str(caught.value)


def test_inline_signed_message_is_not_a_detached_signature(trusted,
                                                           trusted_asc):
    # An attacker's own signed text must not vouch for the catalog.
    inline = trusted.gpg('--armor', '--sign', '--output', '-',
                         input=b'something else')
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, inline, [trusted_asc])
    assert 'detached' in str(caught.value)


def test_expired_key(tmpdir):
    key = GpgKey(str(tmpdir), 'Old Key', 'old@example.com', expire='1d',
                 faked_time='20200101T000000')
    try:
        signature = key.sign(CATALOG)
        key_file = key.export_armored(str(tmpdir.join('old.asc')))
    finally:
        key.close()
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [key_file])
    assert 'has expired' in str(caught.value)
    assert key.fingerprint[-16:] in str(caught.value)


def test_revoked_key(tmpdir):
    key = GpgKey(str(tmpdir), 'Lost Key', 'lost@example.com')
    try:
        signature = key.sign(CATALOG)
        before = key.export_armored(str(tmpdir.join('before.asc')))
        key.revoke()
        after = key.export_armored(str(tmpdir.join('after.asc')))
    finally:
        key.close()
    assert verify_detached(CATALOG, signature, [before]) == key.fingerprint
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [after])
    assert 'revoked' in str(caught.value)


# ---------------------------------------------------------------------------
# Key files

def test_armored_key_with_corrupted_crc(signature, trusted_asc, tmpdir):
    armored = read(trusted_asc)
    checksum = re.search(br'^=(....)$', armored, re.M).group(1)
    wrong = b'AAAA' if checksum != b'AAAA' else b'BBBB'
    path = write(tmpdir, 'corrupt.asc', armored.replace(
        b'\n=' + checksum + b'\n', b'\n=' + wrong + b'\n'))
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [path])
    assert path in str(caught.value) and 'CRC-24' in str(caught.value)


def test_armored_key_with_altered_body(signature, trusted_asc, tmpdir):
    lines = read(trusted_asc).split(b'\n')
    body = lines.index(b'') + 2  # a line well inside the base64
    lines[body] = lines[body][:5] + (b'B' if lines[body][5:6] != b'B'
                                     else b'C') + lines[body][6:]
    path = write(tmpdir, 'altered.asc', b'\n'.join(lines))
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [path])
    assert path in str(caught.value) and 'CRC-24' in str(caught.value)


def test_missing_key_file(signature, trusted_asc, tmpdir):
    path = str(tmpdir.join('no-such-key.asc'))
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [trusted_asc, path])
    assert path in str(caught.value)


def test_no_key_files(signature):
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [])
    assert 'no trusted keys' in str(caught.value)


@pytest.mark.parametrize('content, words', [
    (b'', 'is empty'),
    (b'just some text\n', 'not an OpenPGP public key'),
    (b'-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEawXf\n', 'cut short'),
    (b'\x00\x00\x00\x20\x01\x01\x00\x00KBXf\x00\x00', 'keybox'),
], ids=['empty', 'text', 'truncated', 'keybox'])
def test_key_file_that_is_not_a_key(content, words, signature, tmpdir):
    path = write(tmpdir, 'bad-key', content)
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [path])
    assert path in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize('armor', [False, True], ids=['binary', 'armored'])
def test_secret_key_file_is_refused(armor, signature, trusted, tmpdir):
    path = str(tmpdir.join('secret'))
    trusted.gpg(*((['--armor'] if armor else []) + [
        '--output', path, '--export-secret-keys', trusted.fingerprint]))
    with pytest.raises(SignatureError) as caught:
        verify_detached(CATALOG, signature, [path])
    assert path in str(caught.value) and 'secret key' in str(caught.value)


def test_dearmor_matches_binary_export(trusted_asc, trusted_gpg):
    assert dearmor(read(trusted_asc), trusted_asc) == read(trusted_gpg)


@pytest.mark.parametrize('variant', ['crlf', 'no checksum', 'surrounded',
                                     'no blank line', 'extra header'])
def test_dearmor_reads_armor_variants(variant, trusted_asc, trusted_gpg):
    armored = read(trusted_asc)
    if variant == 'crlf':
        armored = armored.replace(b'\n', b'\r\n')
    elif variant == 'no checksum':
        armored = re.sub(br'(?m)^=....\n', b'', armored)
    elif variant == 'surrounded':
        armored = b'Our signing key:\n\n' + armored + b'\nThanks.\n'
    elif variant == 'no blank line':
        armored = re.sub(br'(BLOCK-----\n)\n', br'\1', armored)
    else:
        armored = armored.replace(b'BLOCK-----\n',
                                  b'BLOCK-----\nComment: ours\n', 1)
    assert armored != read(trusted_asc)
    assert dearmor(armored, 'key.asc') == read(trusted_gpg)


def test_is_armored_public_key(trusted_asc, trusted_gpg, signature):
    assert is_armored_public_key(read(trusted_asc))
    assert not is_armored_public_key(read(trusted_gpg))
    assert not is_armored_public_key(signature)
    assert not is_armored_public_key(b'')


def test_crc24_of_known_input():
    # The RFC 4880 CRC of no bytes is its initial value; of "123456789"
    # it is 0x21CF02 (the catalogue value for CRC-24/OPENPGP).
    assert openpgp.crc24(b'') == 0xB704CE
    assert openpgp.crc24(b'123456789') == 0x21CF02


# ---------------------------------------------------------------------------
# Housekeeping

def test_temporary_directory_is_removed(signature, trusted_asc, tmpdir,
                                        monkeypatch):
    scratch = tmpdir.mkdir('scratch')
    monkeypatch.setattr(tempfile, 'tempdir', str(scratch))
    verify_detached(CATALOG, signature, [trusted_asc])
    with pytest.raises(SignatureError):
        verify_detached(CATALOG + b'x', signature, [trusted_asc])
    assert scratch.listdir() == []


def test_missing_tools_name_their_packages(signature, trusted_asc, trusted,
                                           tmpdir, monkeypatch):
    monkeypatch.setenv('PATH', str(tmpdir.mkdir('empty-bin')))
    with pytest.raises(MissingToolError) as caught:
        verify_detached(CATALOG, signature, [trusted_asc])
    assert isinstance(caught.value, SignatureError)
    assert 'gpgv' in str(caught.value)
    assert 'apt-get install gpgv' in str(caught.value)
    with pytest.raises(MissingToolError) as caught:
        sign_detached(CATALOG, gnupg_home=trusted.home)
    assert 'apt-get install gnupg' in str(caught.value)
