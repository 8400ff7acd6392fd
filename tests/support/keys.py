# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""Throwaway RSA credentials: a user's or a cloud's key and certificate."""

from __future__ import absolute_import

import datetime
import os
import random

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


class KeyPair(object):
    """An RSA key and its self-signed certificate, as PEM bytes and files."""

    def __init__(self, directory, role):
        key = rsa.generate_private_key(65537, 2048, default_backend())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             u'eustore-test-' + role)])
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(random.randint(1, 2 ** 60))
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .sign(key, hashes.SHA256(), default_backend()))
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption())
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.pubkey_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_path = os.path.join(directory, role + '-pk.pem')
        self.cert_path = os.path.join(directory, role + '-cert.pem')
        self.pubkey_path = os.path.join(directory, role + '-pub.pem')
        for path, data in ((self.key_path, self.key_pem),
                           (self.cert_path, self.cert_pem),
                           (self.pubkey_path, self.pubkey_pem)):
            with open(path, 'wb') as pem:
                pem.write(data)
