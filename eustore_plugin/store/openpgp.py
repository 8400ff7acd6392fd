# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
OpenPGP detached signatures for catalogs, made and checked with GnuPG.

A signed store serves ``catalog.asc`` beside ``catalog``: an ASCII-armored
detached signature, the convention of apt, virt-builder and simplestreams.
The publisher signs with the operator's own ``gpg`` (keys, agent and
passphrases stay GnuPG's business); clients check with ``gpgv``, which
trusts exactly the keyring it is given and nothing in ``~/.gnupg``.

The user names the keys to trust as files, armored (``gpg --armor
--export``) or binary (``gpg --export``), several keys to a file if they
like.  gpgv 2.2 reads only binary keyrings, so armored keys are unpacked
here, in pure Python, and everything is joined into a throwaway keyring.

gpgv's exit status is not enough to go by: it exits 0 for a signature made
by a key that has since expired or been revoked.  The verdict comes from its
``[GNUPG:]`` status lines instead.

Other image sources sign their indexes inline instead, with ``gpg
--clearsign`` (virt-builder's ``index.asc``, simplestreams' ``.sjs``
files): :func:`verify_clearsigned` checks one and returns the text gpgv
itself wrote out as the one it verified, never text parsed out here.
RFC 4880 signs text with the spaces at the ends of its lines removed, and
gpgv writes it out that way, so readers of that text must give trailing
spaces no meaning.  A file holding more than that one message (another
one appended, text after the signature) is refused before gpgv sees it,
as gpgv would go on to read it.

Nothing here prints: functions return, or raise :class:`SignatureError`
with a message meant for the user.
"""

from __future__ import absolute_import

import binascii
import os
import os.path
import re
import shutil
import subprocess
import tempfile

import six

from eustore_plugin.errors import MessageError

try:
    from shutil import which
except ImportError:  # Python 2.7
    from distutils.spawn import find_executable as which


class SignatureError(MessageError):
    """A signature could not be made or did not check out; str() is a
    one-line message saying what is wrong and what to do."""


class MissingToolError(SignatureError):
    """gpg or gpgv is not installed."""


# The Debian package of each tool, for the message saying what to install.
# The "2" names are what some older systems installed GnuPG 2 as.
_TOOLS = {
    'gpg': (('gpg', 'gpg2'), 'gnupg', 'signing the catalog'),
    'gpgv': (('gpgv', 'gpgv2'), 'gpgv', 'checking the catalog signature'),
}

_ARMOR_BEGIN = re.compile(br'^-----BEGIN PGP ([A-Z0-9 ,/]+)-----$')
_ARMOR_HEADER = re.compile(br'^[\x21-\x39\x3b-\x7e]+: ')
_ARMOR_CHECKSUM = re.compile(br'^=([A-Za-z0-9+/]{4})$')
_BASE64 = re.compile(br'^[A-Za-z0-9+/]*={0,2}$')
_PUBLIC_KEY_BLOCK = b'PUBLIC KEY BLOCK'
_PRIVATE_KEY_BLOCK = b'PRIVATE KEY BLOCK'
_CLEARSIGN_BEGIN = b'-----BEGIN PGP SIGNED MESSAGE-----'
_SIGNATURE_BEGIN = b'-----BEGIN PGP SIGNATURE-----'
_SIGNATURE_END = b'-----END PGP SIGNATURE-----'
_HASH_HEADER = b'Hash: '
_DASH_ESCAPE = b'- '
_LINE_BLANKS = b' \t\r'
_STATUS_PREFIX = u'[GNUPG:] '
# gpgv's ERRSIG return codes (libgpg-error numbers) worth their own words.
_ERRSIG_NO_PUBKEY = u'9'
_ERRSIG_UNKNOWN_ALGO = u'4'
_PASSPHRASE_TROUBLE = ('Inappropriate ioctl', 'No pinentry', 'Bad passphrase',
                       'Operation cancelled', 'Timeout')


def _native(data):
    """gpg's output (bytes) as the str type messages are built of."""
    text = data.decode('utf-8', 'replace')
    return text.encode('utf-8') if six.PY2 else text


def find_tool(name):
    """The path of gpg or gpgv, or MissingToolError naming its package."""
    names, package, purpose = _TOOLS[name]
    for candidate in names:
        path = which(candidate)
        if path:
            return path
    raise MissingToolError(
        '{0} is not installed, and {1} needs it: install the Debian package '
        '{2} (apt-get install {2})'.format(name, purpose, package))


def _run(argv, stdin_data=b''):
    # stdin is always a pipe, so neither tool can ever read from a terminal.
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(stdin_data)
    return proc.returncode, out, err


def _last_stderr_line(err):
    """The line of gpg's stderr that says why it failed, without "gpg: "."""
    lines = [line.strip() for line in _native(err).splitlines()]
    # Permission warnings about the home directory come on every run and
    # are never the reason.
    lines = [line for line in lines
             if line and 'WARNING: unsafe' not in line]
    if not lines:
        return None
    line = lines[-1]
    for prefix in ('gpg: ', 'gpg2: ', 'gpgv: ', 'gpgv2: '):
        if line.startswith(prefix):
            return line[len(prefix):]
    return line


# ---------------------------------------------------------------------------
# Signing

def sign_detached(data, key_id=None, gnupg_home=None):
    """
    An ASCII-armored detached signature of the bytes ``data``, by ``key_id``
    (default: gpg's default key) from ``gnupg_home`` (default: the user's
    GNUPGHOME or ~/.gnupg).  ``--batch`` keeps gpg itself from asking
    anything; a passphrase is gpg-agent's business (its cache, or its
    pinentry on the user's display), and where the agent has no way to ask,
    signing fails rather than waits.
    """
    argv = [find_tool('gpg'), '--batch', '--yes', '--armor', '--detach-sign',
            '--output', '-']
    if gnupg_home:
        argv[1:1] = ['--homedir', gnupg_home]
    if key_id:
        argv += ['--local-user', key_id]
    returncode, out, err = _run(argv, data)
    if returncode == 0 and out.startswith(b'-----BEGIN PGP SIGNATURE-----'):
        return out
    reason = _last_stderr_line(err)
    if reason is None:
        reason = ('gpg exited with status {0}'.format(returncode)
                  if returncode else 'gpg wrote no armored signature')
    which_key = ' with key {0}'.format(key_id) if key_id else ''
    if any(trouble in reason for trouble in _PASSPHRASE_TROUBLE):
        hint = ('the key needs its passphrase: unlock it in gpg-agent first '
                '(sign anything with gpg in a terminal) or use a key '
                'without one')
    else:
        hint = ('name a secret key gpg has with --sign-key, or set '
                'GNUPGHOME to the GnuPG home that holds it')
    raise SignatureError('gpg could not sign the catalog{0}: {1}; {2}'
                         .format(which_key, reason, hint))


# ---------------------------------------------------------------------------
# Armor (RFC 4880 section 6)

def _crc24_table():
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
        table.append(crc & 0xFFFFFF)
    return table


_CRC24_TABLE = _crc24_table()


def crc24(data):
    """The CRC-24 of RFC 4880 section 6.1, as armor checksums use."""
    crc = 0xB704CE
    for byte in bytearray(data):
        crc = ((crc << 8) & 0xFFFFFF) ^ _CRC24_TABLE[((crc >> 16) ^ byte)
                                                     & 0xFF]
    return crc


def _armor_blocks(text, source_name):
    """
    (label, binary) for each armor block in ``text``, in order.  Text
    around the blocks is ignored, as on a web page that quotes a key.
    """
    lines = [line.strip() for line in text.splitlines()]
    index = 0
    while index < len(lines):
        begin = _ARMOR_BEGIN.match(lines[index])
        index += 1
        if not begin:
            continue
        label = begin.group(1)
        # Header lines ("Version: ...") end at a blank line.  Base64 has no
        # colon, so a body line is never taken for a header when a tool
        # left the blank line out.
        while index < len(lines) and _ARMOR_HEADER.match(lines[index]):
            index += 1
        end = b'-----END PGP ' + label + b'-----'
        body, checksum = [], None
        while True:
            if index >= len(lines):
                raise SignatureError(
                    '{0}: the armored "{1}" has no END line: the file is '
                    'cut short; export the key again'.format(
                        source_name, _native(label)))
            line = lines[index]
            index += 1
            if line == end:
                break
            if not line:
                continue
            if checksum is not None or line.startswith(b'-----'):
                raise SignatureError(
                    '{0}: the armored "{1}" is damaged (unexpected line '
                    'before its END line); export the key again'.format(
                        source_name, _native(label)))
            match = _ARMOR_CHECKSUM.match(line)
            if match:
                checksum = match.group(1)
            else:
                body.append(line)
        yield label, _decode_body(b''.join(body), checksum, label,
                                  source_name)


def _decode_body(body, checksum, label, source_name):
    if not body or len(body) % 4 or not _BASE64.match(body):
        raise SignatureError(
            '{0}: the armored "{1}" is not valid base64; export the key '
            'again'.format(source_name, _native(label)))
    binary = binascii.a2b_base64(body)
    # RFC 9580 makes the checksum optional; when there is one, it must fit.
    if checksum is not None:
        expected = int(binascii.hexlify(binascii.a2b_base64(checksum)), 16)
        if crc24(binary) != expected:
            raise SignatureError(
                '{0}: the armored "{1}" fails its CRC-24 checksum: the file '
                'is damaged; export the key again'.format(
                    source_name, _native(label)))
    return binary


def is_armored_public_key(data):
    """Whether the bytes ``data`` hold an ASCII-armored public key block
    (binary OpenPGP data starts with a byte whose top bit is set)."""
    if not data or bytearray(data[:1])[0] & 0x80:
        return False
    return any(_ARMOR_BEGIN.match(line.strip()) and
               _PUBLIC_KEY_BLOCK in line
               for line in data.splitlines())


def dearmor(text_bytes, source_name):
    """
    The binary OpenPGP packets of every public key block in the armored
    ``text_bytes``; ``source_name`` names the file in errors.  A secret key
    is refused: it does not belong among the keys a client trusts.
    """
    keys = []
    for label, binary in _armor_blocks(text_bytes, source_name):
        if label == _PRIVATE_KEY_BLOCK:
            raise SignatureError(
                '{0} holds a secret key: give the public key instead '
                '(gpg --armor --export KEYID)'.format(source_name))
        if label == _PUBLIC_KEY_BLOCK:
            keys.append(binary)
    if not keys:
        raise SignatureError(
            '{0} holds no "-----BEGIN PGP PUBLIC KEY BLOCK-----": it is not '
            'an OpenPGP public key; export one with gpg --armor --export '
            'KEYID'.format(source_name))
    return b''.join(keys)


def _check_binary_key(data, source_name):
    """Refuse, with a reason, a binary file that is not a public key."""
    if data[8:12] == b'KBXf':
        raise SignatureError(
            '{0} is a GnuPG keybox, not an exported key: export the keys to '
            'trust with gpg --export KEYID > FILE'.format(source_name))
    first = bytearray(data[:1])[0]
    if first & 0x80:
        tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
        if tag == 6:
            return
        if tag == 5:
            raise SignatureError(
                '{0} holds a secret key: give the public key instead (gpg '
                '--export KEYID)'.format(source_name))
    raise SignatureError(
        '{0} is not an OpenPGP public key (neither armored nor binary); '
        'export one with gpg --armor --export KEYID'.format(source_name))


def _read_key_file(path):
    try:
        with open(path, 'rb') as key_file:
            data = key_file.read()
    except (IOError, OSError) as err:
        raise SignatureError('cannot read the trusted key file {0}: {1}'
                             .format(path, err.strerror or err))
    if not data.strip():
        raise SignatureError('the trusted key file {0} is empty'.format(path))
    if bytearray(data[:1])[0] & 0x80 or data[8:12] == b'KBXf':
        _check_binary_key(data, path)
        return data
    return dearmor(data, path)


# ---------------------------------------------------------------------------
# Verifying

def verify_detached(data, signature, key_files):
    """
    Check ``signature`` (a detached signature, armored or binary) over the
    bytes ``data`` against the public keys in the files ``key_files``;
    return the signer's primary-key fingerprint (uppercase hex).

    When the signature file holds several signatures (a publisher moving to
    a new key signs with both), one good signature by a trusted key is
    enough, but a bad one by a trusted key fails the whole: it says the data
    is not what that key signed.
    """
    key_files = _check_key_files(key_files, 'catalog')
    returncode, out, err, _ = _run_gpgv(
        key_files, (('catalog.asc', signature), ('catalog', data)))
    return _verdict(out, err, returncode, key_files)


def _check_key_files(key_files, noun):
    key_files = list(key_files)
    if not key_files:
        raise SignatureError('no trusted keys to check the {0} signature '
                             'with: name the public key files of the '
                             'store\'s publisher'.format(noun))
    return key_files


def _run_gpgv(key_files, files, output=False):
    """
    gpgv's (returncode, stdout, stderr, output) on ``files`` ((name,
    bytes) pairs, given in that order) with only the keys of
    ``key_files`` trusted; with ``output``, what gpgv wrote as the signed
    data (None if it wrote nothing).
    """
    gpgv = find_tool('gpgv')
    keyring = b''.join(_read_key_file(path) for path in key_files)
    workdir = tempfile.mkdtemp(prefix='eustore-gpgv-')
    try:
        home = os.path.join(workdir, 'home')
        os.mkdir(home, 0o700)
        paths = []
        for name, content in (('trusted.gpg', keyring),) + tuple(files):
            paths.append(os.path.join(workdir, name))
            with open(paths[-1], 'wb') as out:
                out.write(content)
        argv = [gpgv, '--homedir', home, '--status-fd', '1',
                '--keyring', paths[0]]
        output_path = os.path.join(workdir, 'signed-content')
        if output:
            argv += ['--output', output_path]
        returncode, out, err = _run(argv + paths[1:])
        written = None
        if output and os.path.exists(output_path):
            with open(output_path, 'rb') as content:
                written = content.read()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return returncode, out, err, written


class _Signature(object):
    """What gpgv's status lines said about one signature."""

    def __init__(self):
        self.outcome = None     # GOODSIG, BADSIG, ERRSIG, EXPKEYSIG, ...
        self.key = None         # the fingerprint, else the long key id
        self.errsig_code = None
        self.fingerprint = None  # from VALIDSIG: the primary key's


def _parse_status(out):
    """The signatures gpgv reported on, and whether it found no data."""
    signatures, current, no_data = [], None, False
    for line in out.decode('utf-8', 'replace').splitlines():
        if not line.startswith(_STATUS_PREFIX):
            continue
        fields = line[len(_STATUS_PREFIX):].split(u' ')
        keyword, args = fields[0], fields[1:]
        if keyword == u'NEWSIG' or (current is None and keyword in (
                u'GOODSIG', u'BADSIG', u'ERRSIG', u'EXPSIG', u'EXPKEYSIG',
                u'REVKEYSIG', u'VALIDSIG')):
            current = _Signature()
            signatures.append(current)
        if keyword in (u'GOODSIG', u'BADSIG', u'EXPSIG', u'EXPKEYSIG',
                       u'REVKEYSIG', u'ERRSIG') and args:
            current.outcome = keyword
            current.key = str(args[0])
            if keyword == u'ERRSIG':
                current.errsig_code = args[5] if len(args) > 5 else None
                # Newer gpgv add the issuer's fingerprint; "-" when unknown.
                if len(args) > 6 and args[6] != u'-':
                    current.key = str(args[6])
        elif keyword == u'VALIDSIG' and args:
            # Fields: signing key's fingerprint ... [primary key's].
            current.fingerprint = str(
                args[9] if len(args) > 9 else args[0]).upper()
        elif keyword in (u'NODATA', u'BADARMOR', u'UNEXPECTED'):
            # UNEXPECTED: OpenPGP packets, but no signature (a key, say).
            no_data = True
    return signatures, no_data


def _verdict(out, err, returncode, key_files, noun='catalog',
             clearsigned=False):
    """
    The fingerprint of the key whose good signature gpgv reported, or
    SignatureError; ``noun`` names what was signed in the messages.
    """
    signatures, no_data = _parse_status(out)
    by_outcome = {}
    for signature in signatures:
        by_outcome.setdefault(signature.outcome, signature)
    trusted = ', '.join(key_files)
    if u'BADSIG' in by_outcome:
        also = '' if clearsigned else \
            ' (or the signature is of another file)'
        raise SignatureError(
            'bad signature: the {0} was altered after it was signed by '
            'key {1}{2}; fetch {3} again, and if it persists, do not use '
            'this store and tell its publisher'.format(
                noun, by_outcome[u'BADSIG'].key, also,
                'it' if clearsigned else 'both'))
    for signature in signatures:
        if signature.outcome == u'GOODSIG' and signature.fingerprint:
            return signature.fingerprint
    if u'REVKEYSIG' in by_outcome:
        raise SignatureError(
            'the {0} is signed by key {1}, which its owner has revoked: '
            'do not trust this {0}; ask the store\'s publisher to sign it '
            'with a current key'.format(noun, by_outcome[u'REVKEYSIG'].key))
    if u'EXPKEYSIG' in by_outcome:
        raise SignatureError(
            'the {0} is signed by key {1}, which has expired: ask the '
            'store\'s publisher to sign it again, or for the key with its '
            'new expiry date and put that in {2}'.format(
                noun, by_outcome[u'EXPKEYSIG'].key, trusted))
    if u'EXPSIG' in by_outcome:
        raise SignatureError(
            'the {0} signature by key {1} has expired: ask the store\'s '
            'publisher to sign the {0} again'.format(
                noun, by_outcome[u'EXPSIG'].key))
    if u'ERRSIG' in by_outcome:
        signature = by_outcome[u'ERRSIG']
        if signature.errsig_code == _ERRSIG_UNKNOWN_ALGO:
            raise SignatureError(
                'gpgv cannot check the {0} signature by key {1}: it does '
                'not know the key\'s or the digest\'s algorithm; install a '
                'newer gpgv'.format(noun, signature.key))
        if signature.errsig_code == _ERRSIG_NO_PUBKEY:
            raise SignatureError(
                'the {0} is signed by key {1}, which is not among the '
                'trusted keys ({2}): if you trust it, add the store '
                'publisher\'s public key file'.format(noun, signature.key,
                                                      trusted))
        raise SignatureError(
            'gpgv could not check the {0} signature by key {1} (error '
            '{2}): {3}'.format(noun, signature.key, signature.errsig_code,
                               _last_stderr_line(err) or 'no reason given'))
    if no_data:
        if clearsigned:
            raise SignatureError(
                'not an OpenPGP signature: the {0} should be a clearsigned '
                'message (gpg --clearsign) and its signature block is '
                'not a signature; ask the store\'s publisher to sign it '
                'again'.format(noun))
        raise SignatureError(
            'not an OpenPGP signature: the {0}\'s signature file should '
            'be a detached signature (gpg --armor --detach-sign); ask the '
            'store\'s publisher to sign the {0} again'.format(noun))
    raise SignatureError(
        'gpgv could not check the {0} signature (status {1}): {2}'.format(
            noun, returncode, _last_stderr_line(err) or 'no reason given'))


# ---------------------------------------------------------------------------
# Clearsigned messages (RFC 4880 section 7)

def _as_bytes(data):
    if isinstance(data, six.text_type):
        return data.encode('utf-8')
    return data


def _trimmed(line):
    return line.rstrip(_LINE_BLANKS)


def is_clearsigned(data):
    """Whether ``data`` (bytes or text) is an OpenPGP clearsigned message:
    its first line that is not blank is "-----BEGIN PGP SIGNED
    MESSAGE-----"."""
    data = _as_bytes(data)
    if not isinstance(data, six.binary_type):
        return False
    first = data.lstrip(b' \t\r\n').split(b'\n', 1)[0]
    return _trimmed(first) == _CLEARSIGN_BEGIN


def _malformed(noun, problem):
    return SignatureError(
        'the {0} is not one well-formed clearsigned message: {1}; fetch it '
        'again, and if it persists, tell the store\'s publisher (sign it '
        'with gpg --clearsign)'.format(noun, problem))


def _signed_lines(data, noun):
    """
    The lines of the clearsigned message ``data`` between its armor
    headers and its signature, still dash-escaped, each without its "\\n".
    Anything but one message (and blank lines around it) is refused: gpgv
    would read a second message or trailing text too, and no file of
    ours is meant to hold one.
    """
    lines = data.split(b'\n')
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index == len(lines) or _trimmed(lines[index]) != _CLEARSIGN_BEGIN:
        raise SignatureError(
            'the {0} is not an OpenPGP clearsigned message (it does not '
            'start with "{1}"); ask the store\'s publisher to sign it with '
            'gpg --clearsign'.format(noun, _native(_CLEARSIGN_BEGIN)))
    index += 1
    # "Hash:" armor headers (RFC 9580 allows none), then an empty line;
    # gpg refuses any other header in a clearsigned message.
    while True:
        if index == len(lines):
            raise _malformed(noun, 'it ends in its armor headers')
        line = _trimmed(lines[index])
        index += 1
        if not line:
            break
        if not line.startswith(_HASH_HEADER):
            raise _malformed(noun, 'its armor header "{0}" is not a Hash: '
                             'header'.format(_native(line[:40])))
    signed = []
    while True:
        if index == len(lines):
            raise _malformed(noun, 'it has no "{0}" line'.format(
                _native(_SIGNATURE_BEGIN)))
        line = lines[index]
        index += 1
        if _trimmed(line) == _SIGNATURE_BEGIN:
            break
        if line.startswith(b'-----'):
            # gpg dash-escapes every line starting with "-"; an armor line
            # left bare starts another message.
            raise _malformed(noun, 'line {0} of its text is an armor line '
                             'that is not dash-escaped'.format(index))
        signed.append(line)
    while True:
        if index == len(lines):
            raise _malformed(noun, 'its signature has no END line')
        line = _trimmed(lines[index])
        index += 1
        if line == _SIGNATURE_END:
            break
        if line.startswith(b'-----'):
            raise _malformed(noun, 'its signature block is damaged')
    if any(line.strip() for line in lines[index:]):
        raise _malformed(noun, 'there is more after its signature')
    return signed


def clearsigned_content_unverified(data, noun='index'):
    """
    The signed text of the clearsigned message ``data``, taken out as RFC
    4880 section 7 says (dash-escaping undone, each line's trailing spaces
    and tabs dropped, as gpgv writes it) WITHOUT checking the signature:
    for a user who trusts no key, and only with a warning saying so.
    Raises SignatureError when ``data`` is not one clearsigned message.
    """
    content = []
    for line in _signed_lines(_as_bytes(data), noun):
        ending = b'\n'
        if line.endswith(b'\r'):
            line, ending = line[:-1], b'\r\n'
        if line.startswith(_DASH_ESCAPE):
            line = line[len(_DASH_ESCAPE):]
        content.append(line.rstrip(b' \t') + ending)
    return b''.join(content)


def verify_clearsigned(data, key_files, noun='index'):
    """
    Check the clearsigned message ``data`` (``gpg --clearsign``) against
    the public keys in the files ``key_files``; return the signed content
    (bytes: what gpgv wrote out as the text it verified) and the signer's
    primary-key fingerprint.  As for detached signatures, one good
    signature by a trusted key among several is enough and a bad one by a
    trusted key fails the whole.  ``noun`` names the file in messages.
    """
    key_files = _check_key_files(key_files, noun)
    data = _as_bytes(data)
    _signed_lines(data, noun)
    returncode, out, err, content = _run_gpgv(
        key_files, (('signed.asc', data),), output=True)
    fingerprint = _verdict(out, err, returncode, key_files, noun,
                           clearsigned=True)
    problem = _plaintext_problem(out)
    if problem or content is None:
        raise SignatureError(
            'gpgv did not find exactly one signed text in the {0} ({1}); '
            'fetch it again, and if it persists, do not use this store and '
            'tell its publisher'.format(
                noun, problem or 'it wrote none out'))
    return content, fingerprint


def _plaintext_problem(out):
    """What is wrong with the signed texts gpgv's status lines report,
    or None for exactly one, read without error."""
    plaintexts = 0
    for line in out.decode('utf-8', 'replace').splitlines():
        if not line.startswith(_STATUS_PREFIX):
            continue
        fields = line[len(_STATUS_PREFIX):].split(u' ')
        if fields[0] == u'PLAINTEXT':
            plaintexts += 1
        elif fields[0] == u'ERROR' and len(fields) > 1 and \
                fields[1].startswith(u'proc_pkt.plaintext'):
            return 'it holds more than one'
    if plaintexts != 1:
        return 'it reported {0}'.format(plaintexts)
    return None
