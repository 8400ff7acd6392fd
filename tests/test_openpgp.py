# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Catalog signatures: made by eustore_plugin.store.openpgp with gpg, checked with
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

from eustore_plugin.catalogs import simplestreams, virtbuilder
from eustore_plugin.store import openpgp
from eustore_plugin.store.openpgp import (MissingToolError, SignatureError,
                                          clearsigned_content_unverified,
                                          dearmor, is_armored_public_key,
                                          is_clearsigned, sign_detached,
                                          verify_clearsigned, verify_detached)
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


# ---------------------------------------------------------------------------
# Clearsigned messages (virt-builder's index.asc, simplestreams' .sjs)

# Lines gpg must dash-escape, trailing blanks the signature does not cover,
# a form feed, non-ASCII.
INDEX = (b'[debian-12]\n'
         b'name=Debian 12 \xc2\xae  \n'
         b'file=debian-12.xz\n'
         b'notes=Debian 12\n'
         b' \n'
         b' -----BEGIN PGP SIGNATURE----- is text here\n'
         b'-----BEGIN PGP SIGNATURE-----\n'
         b'- a dash line\n'
         b'From the publisher\t\n'
         b'\x0c\n')
INDEX_CONTENT = (b'[debian-12]\n'
                 b'name=Debian 12 \xc2\xae\n'
                 b'file=debian-12.xz\n'
                 b'notes=Debian 12\n'
                 b'\n'
                 b' -----BEGIN PGP SIGNATURE----- is text here\n'
                 b'-----BEGIN PGP SIGNATURE-----\n'
                 b'- a dash line\n'
                 b'From the publisher\n'
                 b'\x0c\n')


@pytest.fixture(scope='module')
def clearsigned(signing_key):
    return signing_key.clearsign(INDEX)


def test_verify_clearsigned_returns_what_gpgv_verified(clearsigned,
                                                       signing_key):
    assert is_clearsigned(clearsigned)
    assert b'\n- -----BEGIN PGP SIGNATURE-----\n' in clearsigned
    content, fingerprint = verify_clearsigned(clearsigned,
                                              [signing_key.public_file])
    assert fingerprint == signing_key.fingerprint
    assert content == INDEX_CONTENT
    assert clearsigned_content_unverified(clearsigned) == INDEX_CONTENT


def test_verifies_with_a_binary_key_file(clearsigned, signing_key, tmpdir):
    key_file = signing_key.export_binary(str(tmpdir.join('key.gpg')))
    assert verify_clearsigned(clearsigned, [key_file])[1] == \
        signing_key.fingerprint


@pytest.mark.parametrize('text', [
    b'', b'\n', b'no final newline', b'a\r\nb\r\n', b'mixed\r\nends\n',
    b'\n\n\nblank lines around\n\n\n', b'- \n-\n--\n', b'\xff\xfe\x00\x01\n',
    b'trailing \t \n \t\n', b'x' * 100000 + b'\n',
], ids=['empty', 'newline', 'no-newline', 'crlf', 'mixed', 'blank-lines',
        'dashes', 'binary', 'blanks', 'long-line'])
def test_unverified_content_is_what_gpgv_writes(text, signing_key):
    signed = signing_key.clearsign(text)
    content, _ = verify_clearsigned(signed, [signing_key.public_file])
    assert clearsigned_content_unverified(signed) == content


def test_text_input_is_taken_as_utf8(clearsigned, signing_key):
    text = clearsigned.decode('utf-8')
    assert is_clearsigned(text)
    assert verify_clearsigned(text, [signing_key.public_file])[0] == \
        INDEX_CONTENT


def test_trailing_blanks_are_not_signed_and_not_handed_out(clearsigned,
                                                           signing_key):
    # What RFC 4880 makes of text signatures: blanks can be added to the
    # ends of lines without breaking the signature, and gpgv drops them.
    padded = clearsigned.replace(b'file=debian-12.xz\n',
                                 b'file=debian-12.xz \t \n')
    assert padded != clearsigned
    content, _ = verify_clearsigned(padded, [signing_key.public_file])
    assert content == INDEX_CONTENT


@pytest.mark.parametrize('framing', ['leading blank lines', 'crlf',
                                     'trailing blank lines'])
def test_harmless_framing(framing, clearsigned, signing_key):
    signed = {
        'leading blank lines': b'\n \n' + clearsigned,
        'crlf': clearsigned.replace(b'\n', b'\r\n'),
        'trailing blank lines': clearsigned + b'\n\n  \n',
    }[framing]
    assert is_clearsigned(signed)
    content, _ = verify_clearsigned(signed, [signing_key.public_file])
    if framing == 'crlf':
        assert content == INDEX_CONTENT.replace(b'\n', b'\r\n')
    else:
        assert content == INDEX_CONTENT
    assert clearsigned_content_unverified(signed) == content


def test_altered_clearsigned_text(clearsigned, signing_key):
    altered = clearsigned.replace(b'file=debian-12.xz',
                                  b'file=debian-13.xz')
    with pytest.raises(SignatureError) as caught:
        verify_clearsigned(altered, [signing_key.public_file])
    message = str(caught.value)
    assert message.startswith('bad signature: the index was altered after '
                              'it was signed by key')
    assert 'another file' not in message
    assert '\n' not in message


def test_clearsigned_by_an_untrusted_key(stranger_key, signing_key):
    with pytest.raises(SignatureError) as caught:
        verify_clearsigned(stranger_key.clearsign(INDEX),
                           [signing_key.public_file])
    message = str(caught.value)
    assert 'the index is signed by key' in message
    assert stranger_key.fingerprint[-16:] in message
    assert 'not among the trusted keys' in message
    assert signing_key.public_file in message


def test_the_noun_names_the_file(stranger_key, signing_key):
    with pytest.raises(SignatureError) as caught:
        verify_clearsigned(stranger_key.clearsign(INDEX),
                           [signing_key.public_file], noun='products file')
    assert str(caught.value).startswith('the products file is signed by')


@pytest.fixture(scope='module')
def signed_by_both(signing_key, stranger_key, tmpdir_factory):
    """INDEX clearsigned by both keys at once, as a publisher moving to a
    new key does."""
    both = GpgHome(str(tmpdir_factory.mktemp('both')), 'both')
    try:
        for key in (signing_key, stranger_key):
            both.gpg('--import', input=key.gpg(
                '--export-secret-keys', key.fingerprint))
        return both.gpg('--clearsign', '--local-user',
                        signing_key.fingerprint, '--local-user',
                        stranger_key.fingerprint, '--output', '-',
                        input=INDEX)
    finally:
        both.close()


@pytest.mark.parametrize('trusted', ['signing', 'stranger'])
def test_one_trusted_signature_among_several_is_enough(
        trusted, signed_by_both, signing_key, stranger_key):
    # gpgv exits 2 here (it cannot check the other signature), so its
    # status lines, not its exit status, decide.
    key = signing_key if trusted == 'signing' else stranger_key
    content, fingerprint = verify_clearsigned(signed_by_both,
                                              [key.public_file])
    assert (content, fingerprint) == (INDEX_CONTENT, key.fingerprint)


@pytest.mark.parametrize('order', ['trusted first', 'trusted last'])
def test_a_second_message_is_refused(order, clearsigned, stranger_key,
                                     signing_key):
    other = stranger_key.clearsign(b'[evil]\nfile=evil.xz\n')
    signed = clearsigned + other if order == 'trusted first' else \
        other + clearsigned
    with pytest.raises(SignatureError) as caught:
        verify_clearsigned(signed, [signing_key.public_file])
    assert 'there is more after its signature' in str(caught.value)
    with pytest.raises(SignatureError):
        clearsigned_content_unverified(signed)


@pytest.mark.parametrize('extra', [
    b'[evil]\nfile=evil.xz\n',
    b'-----BEGIN PGP MESSAGE-----\n\nowE7zZ3EkM0ffSojNScnHwA=\n'
    b'-----END PGP MESSAGE-----\n',
], ids=['text', 'inline-message'])
def test_anything_after_the_signature_is_refused(extra, clearsigned,
                                                 signing_key):
    with pytest.raises(SignatureError) as caught:
        verify_clearsigned(clearsigned + extra, [signing_key.public_file])
    assert 'there is more after its signature' in str(caught.value)


def damage(clearsigned, how):
    lines = clearsigned.split(b'\n')
    begin = lines.index(b'-----BEGIN PGP SIGNATURE-----')
    if how == 'comment header':
        lines.insert(1, b'Comment: not allowed')
    elif how == 'no blank line':
        del lines[2]
    elif how == 'bare armor line':
        lines.insert(4, b'-----END PGP SIGNATURE-----')
    elif how == 'no signature':
        lines = lines[:begin]
    elif how == 'no end':
        lines = [line for line in lines
                 if line != b'-----END PGP SIGNATURE-----']
    elif how == 'garbage signature':
        lines[begin + 2:-2] = [b'bm90IGEgc2lnbmF0dXJl']
    return b'\n'.join(lines)


@pytest.mark.parametrize('how, complaint', [
    ('comment header', 'its armor header "Comment: not allowed" is not a '
     'Hash: header'),
    ('no blank line', 'its armor header "[debian-12]" is not a Hash: '
     'header'),
    ('bare armor line', 'line 5 of its text is an armor line'),
    ('no signature', 'it has no "-----BEGIN PGP SIGNATURE-----" line'),
    ('no end', 'its signature has no END line'),
])
def test_damaged_clearsigned_messages(how, complaint, clearsigned,
                                      signing_key):
    damaged = damage(clearsigned, how)
    for check in (lambda: verify_clearsigned(damaged,
                                             [signing_key.public_file]),
                  lambda: clearsigned_content_unverified(damaged)):
        with pytest.raises(SignatureError) as caught:
            check()
        message = str(caught.value)
        assert message.startswith('the index is not one well-formed '
                                  'clearsigned message: ' + complaint)
        assert '\n' not in message


def test_a_garbage_signature_block(clearsigned, signing_key):
    damaged = damage(clearsigned, 'garbage signature')
    with pytest.raises(SignatureError) as caught:
        verify_clearsigned(damaged, [signing_key.public_file])
    assert 'not an OpenPGP signature' in str(caught.value)
    assert 'gpg --clearsign' in str(caught.value)


@pytest.mark.parametrize('kind', ['plain text', 'detached signature',
                                  'inline signed', 'public key', 'empty',
                                  'text before'])
def test_what_is_not_a_clearsigned_message(kind, signing_key, clearsigned):
    data = {
        'plain text': INDEX,
        'detached signature': signing_key.sign(INDEX),
        'inline signed': signing_key.gpg('--armor', '--sign', '--output',
                                         '-', input=INDEX),
        'public key': read(signing_key.public_file),
        'empty': b'',
        'text before': b'Our index:\n' + clearsigned,
    }[kind]
    assert not is_clearsigned(data)
    for check in (lambda: verify_clearsigned(data,
                                             [signing_key.public_file]),
                  lambda: clearsigned_content_unverified(data)):
        with pytest.raises(SignatureError) as caught:
            check()
        assert str(caught.value).startswith(
            'the index is not an OpenPGP clearsigned message (it does not '
            'start with "-----BEGIN PGP SIGNED MESSAGE-----")')


@pytest.mark.parametrize('value', [None, 42, b'-----BEGIN PGP SIGNATURE-----'])
def test_is_clearsigned_of_odd_values(value):
    assert is_clearsigned(value) is False


@pytest.mark.parametrize('message, content', [
    # RFC 9580 allows no Hash: header; gpg writes several for several keys.
    (b'-----BEGIN PGP SIGNED MESSAGE-----\n\nhello\n', b'hello\n'),
    (b'-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\nHash: SHA512\n\n'
     b'hello\n', b'hello\n'),
    (b'-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n'
     b'- -----BEGIN PGP SIGNED MESSAGE-----\n- - x\n-x\n- \n',
     b'-----BEGIN PGP SIGNED MESSAGE-----\n- x\n-x\n\n'),
    (b'-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\n'
     b'a  \r\n\r\n', b'a\r\n\r\n'),
])
def test_unverified_content_of_hand_made_messages(message, content):
    signature = (b'-----BEGIN PGP SIGNATURE-----\n\nAAAA\n'
                 b'-----END PGP SIGNATURE-----\n')
    assert clearsigned_content_unverified(message + signature) == content


def test_no_trusted_keys_for_a_clearsigned_message(clearsigned):
    with pytest.raises(SignatureError) as caught:
        verify_clearsigned(clearsigned, [])
    assert str(caught.value).startswith('no trusted keys to check the index '
                                        'signature with')


@pytest.mark.parametrize('status, problem', [
    (b'[GNUPG:] PLAINTEXT 74 0 \n[GNUPG:] GOODSIG X\n', None),
    (b'[GNUPG:] GOODSIG X\n', 'it reported 0'),
    (b'[GNUPG:] PLAINTEXT 74 0 \n[GNUPG:] PLAINTEXT 74 0 \n', 'it reported 2'),
    (b'[GNUPG:] PLAINTEXT 74 0 \n[GNUPG:] GOODSIG X\n'
     b'[GNUPG:] ERROR proc_pkt.plaintext 89_BAD_DATA\n',
     'it holds more than one'),
])
def test_gpgv_must_report_exactly_one_signed_text(status, problem):
    # A second signed text is refused before gpgv sees it; should one
    # slip through, gpgv's own report of it is not ignored either.
    assert openpgp._plaintext_problem(status) == problem


def test_clearsigned_temporary_directory_is_removed(clearsigned, signing_key,
                                                    tmpdir, monkeypatch):
    scratch = tmpdir.mkdir('scratch')
    monkeypatch.setattr(tempfile, 'tempdir', str(scratch))
    verify_clearsigned(clearsigned, [signing_key.public_file])
    with pytest.raises(SignatureError):
        verify_clearsigned(clearsigned.replace(b'Debian', b'Devian'),
                           [signing_key.public_file])
    assert scratch.listdir() == []


def test_a_clearsigned_virt_builder_index_reads_as_written(signing_key):
    index = (b'[debian-12]\nfile=debian-12.xz\narch=x86_64\n'
             b'notes=Debian 12\n \n Minimal.\n\n[fedora-40]\nfile=f.xz\n')
    content, _ = verify_clearsigned(signing_key.clearsign(index),
                                    [signing_key.public_file])
    assert b'\n\n Minimal.' in content  # gpgv dropped the " " line's space
    entries, warnings = virtbuilder.parse_index(
        content, 'https://builder.example.com/index.asc')
    assert warnings == []
    assert [(e.section, e.notes, e.url) for e in entries] == [
        ('debian-12', 'Debian 12\n\nMinimal.',
         'https://builder.example.com/debian-12.xz'),
        ('fedora-40', None, 'https://builder.example.com/f.xz')]


def test_a_clearsigned_simplestreams_index(signing_key):
    index = (b'{"format": "index:1.0", "index": {"c": {"datatype": '
             b'"image-downloads", "format": "products:1.0",\n'
             b'  "path": "streams/v1/c.json"}}}\n')
    signed = signing_key.clearsign(index)
    content, _ = verify_clearsigned(signed, [signing_key.public_file],
                                    noun='simplestreams index')
    refs, _ = simplestreams.parse_index(
        content, 'https://m.example.com/streams/v1/index.sjs')
    assert [ref.url for ref in refs] == [
        'https://m.example.com/streams/v1/c.json']
