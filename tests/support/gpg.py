# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Throwaway GnuPG homes and signing keys for the signature tests, made with
the gpg command itself so the tests see exactly what a publisher's gpg
makes.
"""

from __future__ import absolute_import

import os
import os.path
import shutil
import subprocess
import tempfile

from eustore_plugin.store import openpgp
from tests.support.commands import run_tool

try:
    from shutil import which
except ImportError:  # Python 2.7
    from distutils.spawn import find_executable as which


# gpg-agent's sockets live in the home when /run/user/UID does not exist,
# and a Unix socket path cannot be longer than about 100 bytes (108 on
# Linux, less elsewhere); pytest's tmpdir paths easily are.
_SOCKET_NAME = 'S.gpg-agent.browser'
_MAX_SOCKET_PATH = 100


def missing_tools():
    """The GnuPG programs the tests need that are not on PATH."""
    return [name for name in ('gpg', 'gpgv', 'gpgconf') if not which(name)]


def gpg(home, *args, **kwargs):
    """Run gpg on ``home`` in batch mode; its stdout, or an AssertionError
    with its stderr."""
    return run_tool(['gpg', '--homedir', home, '--batch', '--yes'] +
                    list(args), stdin=kwargs.get('input', b''))


class GpgHome(object):
    """A GnuPG home of its own, under ``directory`` when its path is short
    enough for gpg-agent's sockets, else under /tmp."""

    def __init__(self, directory, name='gnupg'):
        home = os.path.join(directory, name)
        if len(os.path.join(home, _SOCKET_NAME)) > _MAX_SOCKET_PATH:
            self._tmp = tempfile.mkdtemp(
                prefix='gpg', dir='/tmp' if os.path.isdir('/tmp') else None)
            home = os.path.join(self._tmp, name)
        else:
            self._tmp = None
        os.mkdir(home, 0o700)  # gpg warns about a home others can read
        self.home = home

    def gpg(self, *args, **kwargs):
        return gpg(self.home, *args, **kwargs)

    def _kill_agent(self):
        if which('gpgconf'):
            subprocess.call(['gpgconf', '--homedir', self.home, '--kill',
                             'gpg-agent'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def close(self):
        self._kill_agent()
        shutil.rmtree(self._tmp or self.home, ignore_errors=True)


class GpgKey(GpgHome):
    """
    A GnuPG home holding one new ed25519 signing key with no passphrase,
    as ``gpg --quick-gen-key`` makes it; ``fingerprint`` is its primary
    key's.  ``faked_time`` ("20200101T000000") backdates the key, and with
    ``expire`` ("1d") makes a key that has already expired.  A key with a
    ``passphrase`` comes with an agent that cannot ask for it, as on a
    server, and never shows a prompt on the desktop of whoever runs the
    tests.
    """

    def __init__(self, directory, name, email, expire='never',
                 faked_time=None, passphrase=''):
        GpgHome.__init__(self, directory, 'gnupg-' + email.split('@')[0])
        self.uid = '{0} <{1}>'.format(name, email)
        self.faked_time = faked_time
        # An empty --passphrase in batch mode means no protection; any other
        # reaches the agent only through the loopback pinentry.
        loopback = ['--pinentry-mode', 'loopback'] if passphrase else []
        self.gpg(*(self._time_args() + loopback + [
            '--passphrase', passphrase, '--quick-gen-key', self.uid,
            'ed25519', 'sign', expire]))
        if passphrase:
            self._kill_agent()  # it caches the passphrase it was just given
            with open(os.path.join(self.home, 'gpg-agent.conf'), 'w') as conf:
                conf.write('pinentry-program /bin/false\n')
        colons = self.gpg('--with-colons', '--list-keys', self.uid)
        self.fingerprint = [line.split(b':')[9].decode('ascii')
                            for line in colons.splitlines()
                            if line.startswith(b'fpr:')][0]

    def _time_args(self):
        if self.faked_time:
            return ['--faked-system-time', self.faked_time]
        return []

    def export_armored(self, path):
        self.gpg('--armor', '--output', path, '--export', self.fingerprint)
        return path

    def export_binary(self, path):
        self.gpg('--output', path, '--export', self.fingerprint)
        return path

    def sign(self, data):
        """An armored detached signature of ``data``, by eustore's own
        sign_detached (with gpg directly when the time is faked)."""
        if self.faked_time:
            return self.gpg(*(self._time_args() + [
                '--armor', '--detach-sign', '--local-user', self.fingerprint,
                '--output', '-']), input=data)
        return openpgp.sign_detached(data, key_id=self.fingerprint,
                                     gnupg_home=self.home)

    def clearsign(self, data, *signers):
        """``data`` clearsigned (gpg --clearsign) by this key, or by the
        keys ``signers`` (fingerprints) of this home."""
        users = []
        for signer in signers or (self.fingerprint,):
            users += ['--local-user', signer]
        return self.gpg(*(self._time_args() + ['--clearsign'] + users +
                          ['--output', '-']), input=data)

    def revoke(self):
        """Revoke the key with the certificate gpg stored when it made it."""
        path = os.path.join(self.home, 'openpgp-revocs.d',
                            self.fingerprint + '.rev')
        with open(path, 'rb') as rev:
            # gpg defuses the stored certificate with a leading colon.
            certificate = rev.read().replace(b'\n:-----', b'\n-----')
        self.gpg('--import', input=certificate)
