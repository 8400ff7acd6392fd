#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
See the tools work with no cloud of your own, from both sides.

The operator: an image store in a bucket of moto's S3 on loopback, two
images published into it with a signed catalog, Varnish in front of it as
deploy/varnish/ configures it, and a third image published with a purge of
the cache.  The user: a cloud (another moto, checking signatures) with keys
and certificates like a eucarc gives, the store listed through the cache
with the operator's key trusted, one image installed, then the same one
again as an EBS-backed image (--ebs: its disk written into a snapshot
through the EBS direct APIs, which moto serves at its EC2 URL); then images
from the kinds of store that exist today, a simplestreams mirror and a
virt-builder index (local, signed by the same key), one installed from
each; and a catalog altered by one byte, refused as it should be.
Everything started is stopped and removed at the end.

Every command is printed as it can be pasted into a shell once the
environment shown before it is set.

With ``--store DIR``, only the demo's store is written, into the new
directory DIR (a catalog and three image tarballs, unsigned), for the
commands to read as a local store: ``eustore-describe-images -U DIR``.
"""

from __future__ import print_function

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

try:
    from shlex import quote
except ImportError:  # Python 2.7
    from pipes import quote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The commands of the environment this runs in (scripts/demo runs it with
# .venv's Python), whatever PATH holds.
BIN = os.path.dirname(os.path.abspath(sys.executable))

from tests.support.demostore import write_demo_store  # noqa: E402
from tests.support.gpg import GpgKey  # noqa: E402
from tests.support.http import StoreServer  # noqa: E402
from tests.support.keys import KeyPair  # noqa: E402
from tests.support.moto import (REGION, MotoCloud, direct_cloud,  # noqa
                                find_moto_server, which)
from tests.support.varnish import VarnishCache, find_varnishd  # noqa: E402

BUCKET = 'demo-store'
# Shown as a placeholder: a secret is never printed, even a demo's.
SECRETS = ('AWS_SECRET_ACCESS_KEY',)


class Demo(object):
    """Runs the commands, counting them, each as a user would type it."""

    def __init__(self):
        self.ran = 0
        self.shown = {}

    def show_environment(self, who, env, names):
        print('\n# The environment of the {0}:'.format(who))
        for name in names:
            value = '<its secret key, not shown>' if name in SECRETS \
                else quote(env[name])
            print('export {0}={1}'.format(name, value))

    def run(self, env, *command, **kwargs):
        expect = kwargs.get('expect', 0)
        print('\n$ ' + ' '.join(quote(arg) for arg in command))
        sys.stdout.flush()
        env = dict(env, PATH=BIN + os.pathsep + env.get('PATH', ''))
        status = subprocess.call(command, env=env)
        if status != expect:
            sys.exit('demo: {0} exited with {1}, not {2}: something is '
                     'wrong'.format(command[0], status, expect))
        if expect:
            print('# (exit status {0}: refused, as it should be)'.format(
                status))
        self.ran += 1


def section(title):
    print('\n=== ' + title)


def write_store(directory):
    """The demo's store in ``directory``, which must be new or empty."""
    directory = os.path.abspath(os.path.expanduser(directory))
    if os.path.exists(directory) and (not os.path.isdir(directory) or
                                      os.listdir(directory)):
        sys.exit('demo: {0} is not an empty directory: name a new one for '
                 'the store'.format(directory))
    write_demo_store(directory)
    print('The demo\'s store is in {0}: a catalog and three image tarballs '
          '(unsigned).\nList it:\n    eustore-describe-images -U {1}\n'
          'Install from it, with a eucarc sourced:\n    eustore-install-image '
          '-U {1} -i fedora-x86_64-hvm-demo -b BUCKET'.format(
              directory, quote(directory)))


def main():
    parser = argparse.ArgumentParser(
        description='See the tools work with no cloud of your own.')
    parser.add_argument('--store', metavar='DIR', help='only write the '
                        'demo\'s store into the new directory DIR, to read '
                        'with "eustore-describe-images -U DIR"')
    args = parser.parse_args()
    if args.store:
        write_store(args.store)
        return
    if not os.path.isfile(os.path.join(BIN, 'eustore-install-image')):
        sys.exit('demo: {0} has no eustore commands: run "bash scripts/setup" '
                 'and then "bash scripts/demo"'.format(BIN))
    moto = find_moto_server()
    if not moto:
        sys.exit('demo: moto_server is not installed: run "bash '
                 'scripts/setup"')
    workdir = tempfile.mkdtemp(prefix='eustore-demo-')
    started = []
    demo = Demo()
    try:
        images = os.path.join(workdir, 'images', 'images')
        write_demo_store(os.path.dirname(images))
        # A store is read anonymously, which only a moto that checks no
        # signatures serves; the users' cloud checks them.
        storage = MotoCloud(moto, check_signatures=False)
        started.append(storage)
        cloud = MotoCloud(moto)
        started.append(cloud)
        key = GpgKey(workdir, 'Demo Store', 'store@example.com')
        started.append(key)
        trusted = key.export_armored(os.path.join(workdir, 'store-key.asc'))

        section('The operator publishes two images, signing the catalog')
        operator = dict(os.environ, S3_URL=storage.url,
                        AWS_DEFAULT_REGION=REGION, AWS_AUTH_REGION=REGION,
                        AWS_ACCESS_KEY_ID=storage.key_id,
                        AWS_SECRET_ACCESS_KEY=storage.secret_key,
                        GNUPGHOME=key.home)
        demo.show_environment('operator', operator, (
            'S3_URL', 'AWS_DEFAULT_REGION', 'AWS_AUTH_REGION',
            'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'GNUPGHOME'))
        publish = ['eustore-publish-image', '-b', BUCKET, '--sign-key',
                   'store@example.com', '--recipe', 'demo', '--contact',
                   'images@example.com']
        demo.run(operator, *(publish + [
            '-t', os.path.join(images, 'demo-centos-6.5-x86_64.tgz'),
            '-i', 'centos-6.5-x86_64', '-s', 'CentOS 6.5, single kernel',
            '-a', 'x86_64', '--os', 'centos', '--image-version', '6.5',
            '--stamp', 'c65-1']))
        demo.run(operator, *(publish + [
            '-t', os.path.join(images, 'demo-debian-7-i386.tgz'),
            '-i', 'debian-7-i386', '-s', 'Debian 7, a kernel per hypervisor',
            '-a', 'i386', '--os', 'debian', '--image-version', '7',
            '--stamp', 'd7-1']))

        store_url = '{0}{1}/'.format(storage.url, BUCKET)
        purge = []
        if find_varnishd():
            cache = VarnishCache('127.0.0.1', storage.port, '/' + BUCKET)
            started.append(cache)
            store_url = cache.url
            purge = ['--purge', cache.url]
            section('Varnish (deploy/varnish/eustore.vcl) serves the store '
                    'at ' + store_url)
        else:
            section('varnishd is not installed (scripts/setup installs it): '
                    'the store is read straight from its bucket')

        user = dict(os.environ, EUSTORE_URL=store_url,
                    XDG_CACHE_HOME=os.path.join(workdir, 'cache'),
                    XDG_STATE_HOME=os.path.join(workdir, 'state'))
        demo.show_environment('user', user, ('EUSTORE_URL',
                                             'XDG_CACHE_HOME',
                                             'XDG_STATE_HOME'))
        demo.run(user, 'eustore-describe-images', '--trusted-key', trusted)
        section('A third image, and the cache purged of the old catalog')
        demo.run(operator, *(publish + purge + [
            '-t', os.path.join(images, 'demo-fedora-20-x86_64-hvm.tgz'),
            '-i', 'fedora-20-x86_64', '-s', 'Fedora 20, HVM', '-a', 'x86_64',
            '--os', 'fedora', '--image-version', '20', '--stamp', 'f20-1']))
        demo.run(user, 'eustore-describe-images', '-v', '--trusted-key',
                 trusted)
        demo.run(user, 'eustore-check-store', '--trusted-key', trusted)

        section('The user installs one into their cloud')
        # What "source eucarc" would put in the environment.
        user_keys = KeyPair(workdir, 'user')
        cloud_keys = KeyPair(workdir, 'cloud')
        eucarc = dict(user, EC2_URL=cloud.url, S3_URL=cloud.url,
                      EUARE_URL=cloud.url, AWS_DEFAULT_REGION=REGION,
                      AWS_ACCESS_KEY_ID=cloud.key_id,
                      AWS_SECRET_ACCESS_KEY=cloud.secret_key,
                      EC2_CERT=user_keys.cert_path,
                      EC2_PRIVATE_KEY=user_keys.key_path,
                      EUCALYPTUS_CERT=cloud_keys.cert_path,
                      EC2_USER_ID='123456789012')
        demo.show_environment('user (a sourced eucarc)', eucarc, (
            'EC2_URL', 'S3_URL', 'EUARE_URL', 'AWS_DEFAULT_REGION',
            'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'EC2_CERT',
            'EC2_PRIVATE_KEY', 'EUCALYPTUS_CERT', 'EC2_USER_ID'))
        demo.run(eucarc, 'eustore-install-image', '--trusted-key', trusted,
                 '-i', 'fedora-20-x86_64', '-b', 'demo-images',
                 '--no-progress')

        section('The same image EBS-backed: its disk written into a new '
                'snapshot through the EBS direct APIs and registered from '
                'it; no bucket, no bundling keys')
        # moto serves the EBS direct APIs at its EC2 URL; on AWS the
        # endpoint follows from EC2's, and a cloud without them (Eucalyptus)
        # takes instance-store images only.
        ebs = dict(eucarc, EBS_URL=cloud.url)
        demo.show_environment('user (the EBS direct APIs\' endpoint added)',
                              ebs, ('EBS_URL',))
        demo.run(ebs, 'eustore-install-image', '--trusted-key', trusted,
                 '-i', 'fedora-20-x86_64', '--ebs', '--no-progress')

        public_stores(demo, eucarc, workdir, key, trusted, started)

        section('Somebody alters the catalog by one byte: it is refused')
        storage_client = direct_cloud(storage)
        catalog = storage_client.get_object(BUCKET, 'catalog')
        storage_client.put_object(BUCKET, 'catalog', catalog.replace(
            b'CentOS 6.5', b'KentOS 6.5'), acl='public-read')
        for part in started:
            if isinstance(part, VarnishCache):
                part.purge('catalog')
        demo.run(user, 'eustore-describe-images', '--trusted-key', trusted,
                 expect=1)
    finally:
        for part in reversed(started):
            part.stop() if hasattr(part, 'stop') else part.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print('\n=== Demo finished: {0} commands ran as expected; everything it '
          'started is stopped and its files are removed.'.format(demo.ran))


def public_stores(demo, eucarc, workdir, key, trusted, started):
    """Images from a simplestreams mirror and a virt-builder index."""
    if not (which('qemu-img') and which('xz')):
        section('qemu-img or xz is missing (scripts/setup installs them): '
                'no images from simplestreams or virt-builder stores')
        return
    from tests.support.publicstores import MIRROR_PRODUCT, BuilderIndex, Mirror
    mirror_dir = os.path.join(workdir, 'mirror')
    Mirror(mirror_dir, signer=key, workdir=workdir)
    mirror = StoreServer(mirror_dir).start()
    started.append(mirror)
    builder_dir = os.path.join(workdir, 'builder')
    BuilderIndex(builder_dir, signer=key)
    builder = StoreServer(builder_dir).start()
    started.append(builder)

    section('A simplestreams mirror (as Ubuntu\'s cloud images are '
            'published): listed, and its qcow2 disk installed as HVM')
    demo.run(eucarc, 'eustore-describe-images', '-U', mirror.url, '-v',
             '--trusted-key', trusted)
    demo.run(eucarc, 'eustore-install-image', '-U', mirror.url,
             '--trusted-key', trusted, '-i', MIRROR_PRODUCT,
             '--virtualization-type', 'hvm', '-b', 'demo-images',
             '--no-progress')
    section('A virt-builder index (as libguestfs publishes templates): '
            'listed, and an xz disk installed as HVM')
    demo.run(eucarc, 'eustore-describe-images', '-U',
             builder.url + 'index.asc', '--trusted-key', trusted)
    demo.run(eucarc, 'eustore-install-image', '-U',
             builder.url + 'index.asc', '--trusted-key', trusted, '-i',
             'fedora-39', '-a', 'x86_64', '-b', 'demo-images',
             '--no-progress')


if __name__ == '__main__':
    main()
