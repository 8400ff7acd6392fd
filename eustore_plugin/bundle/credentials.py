# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Loading the certificates and private keys a bundle is made with, and the
RSA operations the bundle format uses.

Callers hand us whatever they have: PEM data (bytes or text), a path to a PEM
file, or an already loaded ``cryptography`` object.  PEM data is told apart
from a path by its ``-----BEGIN`` armour, because on Python 2 both are
``str``.

The bundle format wants RSA PKCS#1 v1.5 everywhere: encryption of the AES key
and IV (written as hex text before encryption, see ``encrypt_hex_text``) and
RSA-SHA1 signatures over the manifest.
"""

from __future__ import absolute_import, division, print_function

import binascii
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
import six

from eustore_plugin.bundle.errors import (BundleVerificationError,
                                          CredentialError)

_PEM_ARMOUR = b'-----BEGIN'


def _describe(source):
    """How messages name a credential: its path, or "(PEM data)"."""
    if isinstance(source, six.binary_type) and _PEM_ARMOUR not in source:
        return source.decode('utf-8', 'replace')
    if isinstance(source, six.text_type) and \
            _PEM_ARMOUR.decode('ascii') not in source:
        return source
    return '(PEM data)'


def _read_pem(source, what):
    """PEM bytes from PEM bytes/text or from a file path."""
    if isinstance(source, six.text_type):
        if _PEM_ARMOUR.decode('ascii') in source:
            return source.encode('ascii', 'replace')
        path = source
    elif isinstance(source, six.binary_type):
        if _PEM_ARMOUR in source:
            return source
        path = source
    else:
        raise CredentialError(
            'the {0} must be PEM data or the path of a PEM file, not {1}'
            .format(what, type(source).__name__))
    try:
        with open(path, 'rb') as pem_file:
            return pem_file.read()
    except (IOError, OSError) as err:
        raise CredentialError(
            'cannot read the {0} file {1}: {2}; check the path and its '
            'permissions'.format(what, _describe(source),
                                 err.strerror or err))


def load_certificate(source, what='certificate'):
    """An X.509 certificate with an RSA public key.

    ``what`` names the certificate in messages ("user certificate", "cloud
    certificate").
    """
    if isinstance(source, x509.Certificate):
        cert = source
    else:
        data = _read_pem(source, what)
        try:
            cert = x509.load_pem_x509_certificate(data, default_backend())
        except ValueError as err:
            raise CredentialError(
                'the {0} {1} is not a PEM X.509 certificate ({2}); pass the '
                'certificate file (cert-*.pem or cloud-cert.pem)'
                .format(what, _describe(source), err))
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise CredentialError(
            'the {0} {1} does not hold an RSA key; S3 bundles need RSA '
            'certificates'.format(what, _describe(source)))
    return cert


def load_private_key(source, what='private key'):
    """An unencrypted RSA private key."""
    if isinstance(source, rsa.RSAPrivateKey):
        return source
    data = _read_pem(source, what)
    try:
        key = serialization.load_pem_private_key(data, None, default_backend())
    except TypeError:
        # cryptography says "Password was not given but private key is
        # encrypted" as a TypeError.
        raise CredentialError(
            'the {0} {1} is protected by a passphrase; write an unencrypted '
            'copy with "openssl rsa -in KEY -out KEY.plain"'
            .format(what, _describe(source)))
    except ValueError as err:
        raise CredentialError(
            'the {0} {1} is not a PEM private key ({2}); pass the pk-*.pem '
            'file that belongs to your certificate'
            .format(what, _describe(source), err))
    except Exception as err:  # pylint: disable=broad-except
        # Some cryptography versions raise UnsupportedAlgorithm for keys
        # they do not know; all of them mean the same thing to the user.
        raise CredentialError(
            'cannot load the {0} {1}: {2}'.format(
                what, _describe(source), err))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError(
            'the {0} {1} is not an RSA key; S3 bundles need RSA keys'
            .format(what, _describe(source)))
    return key


def check_key_matches_certificate(private_key, certificate):
    """Refuse a private key that is not the one of ``certificate``: a bundle
    signed with it would be rejected by the cloud after the whole upload."""
    if private_key.public_key().public_numbers() != \
            certificate.public_key().public_numbers():
        raise CredentialError(
            'the private key does not belong to the user certificate '
            '(their public keys differ); pass the key pair issued together')


def encrypt_hex_text(certificate, secret):
    """RSA PKCS#1 v1.5 encryption of ``secret`` as lowercase hex text, with
    the result hex encoded: how manifests carry the AES key and IV."""
    plaintext = binascii.hexlify(secret)
    ciphertext = certificate.public_key().encrypt(plaintext,
                                                  padding.PKCS1v15())
    return binascii.hexlify(ciphertext).decode('ascii')


_HEX_RE = re.compile(b'^[0-9a-fA-F]+$')


def decrypt_hex_text(private_key, encrypted_hex, length):
    """The inverse of ``encrypt_hex_text``; ``None`` when ``private_key`` is
    not the one the value was encrypted for.

    A wrong key is recognised by the plaintext not being ``2 * length`` hex
    digits, not only by a decryption error: OpenSSL 3.2 and later answer a
    failed PKCS#1 v1.5 decryption with random bytes ("implicit rejection")
    instead of an error.
    """
    try:
        ciphertext = binascii.unhexlify(encrypted_hex.strip())
        plaintext = private_key.decrypt(ciphertext, padding.PKCS1v15())
    except (ValueError, TypeError, binascii.Error):
        return None
    if len(plaintext) != 2 * length or not _HEX_RE.match(plaintext):
        return None
    return binascii.unhexlify(plaintext)


def sign_sha1(private_key, data):
    """Hex RSA-SHA1 PKCS#1 v1.5 signature of ``data``."""
    signature = private_key.sign(data, padding.PKCS1v15(), hashes.SHA1())
    return binascii.hexlify(signature).decode('ascii')


def verify_sha1(certificate, data, signature_hex):
    """Raise BundleVerificationError unless ``signature_hex`` is the
    RSA-SHA1 signature of ``data`` by the key of ``certificate``."""
    try:
        signature = binascii.unhexlify(signature_hex.strip())
    except (ValueError, TypeError, binascii.Error):
        raise BundleVerificationError(
            'the manifest signature is not hex; the manifest is damaged')
    try:
        certificate.public_key().verify(signature, data, padding.PKCS1v15(),
                                        hashes.SHA1())
    except InvalidSignature:
        raise BundleVerificationError(
            'the manifest signature does not match its contents or the user '
            'certificate; the manifest was altered or signed by someone else')
