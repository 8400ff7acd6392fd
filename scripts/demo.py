#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
See the tools work with no cloud of your own, from both sides.

The operator: an image store in a bucket of moto's S3 on loopback, two
images published into it with a signed catalog, Varnish in front of it as
deploy/varnish/ configures it, and a third image published with a purge of
the cache.  The user: a cloud (another moto, checking signatures) with
keys and certificates like a eucarc gives, the store listed through the
cache with the operator's key trusted, one image installed, and a catalog
altered by one byte refused.  Everything is removed at the end.
"""

from __future__ import print_function

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The commands of the environment this runs in (scripts/demo runs it with
# .venv's Python), whatever PATH holds.
BIN = os.path.dirname(os.path.abspath(sys.executable))

from tests.support.demostore import write_demo_store  # noqa: E402
from tests.support.keys import KeyPair  # noqa: E402
from tests.support.moto import REGION, MotoCloud, direct_cloud, \
    find_moto_server  # noqa: E402
from tests.support.gpg import GpgKey  # noqa: E402
from tests.support.varnish import VarnishCache, find_varnishd  # noqa: E402

BUCKET = 'demo-store'


def run(env, *command, **kwargs):
    print('\n$ ' + ' '.join(command))
    sys.stdout.flush()
    env = dict(env, PATH=BIN + os.pathsep + env.get('PATH', ''))
    status = subprocess.call(command, env=env)
    if status != kwargs.get('expect', 0):
        sys.exit('demo: {0} exited with {1}'.format(command[0], status))


def main():
    if not os.path.isfile(os.path.join(BIN, 'eustore-install-image')):
        sys.exit('demo: {0} has no eustore commands: run "bash scripts/setup" '
                 'and then "bash scripts/demo"'.format(BIN))
    workdir = tempfile.mkdtemp(prefix='eustore-demo-')
    started = []
    try:
        images = os.path.join(workdir, 'images', 'images')
        write_demo_store(os.path.dirname(images))
        moto = find_moto_server()
        if not moto:
            sys.exit('demo: moto_server is not installed: run "bash '
                     'scripts/setup"')
        # A store is read anonymously, which only a moto that checks no
        # signatures serves; the users' cloud checks them.
        storage = MotoCloud(moto, check_signatures=False)
        started.append(storage)
        cloud = MotoCloud(moto)
        started.append(cloud)
        key = GpgKey(workdir, 'Demo Store', 'store@example.com')
        started.append(key)
        trusted = key.export_armored(os.path.join(workdir, 'store-key.asc'))

        print('=== The operator publishes two images, signing the catalog')
        operator = dict(os.environ, S3_URL=storage.url,
                        AWS_DEFAULT_REGION=REGION, AWS_AUTH_REGION=REGION,
                        AWS_ACCESS_KEY_ID=storage.key_id,
                        AWS_SECRET_ACCESS_KEY=storage.secret_key,
                        GNUPGHOME=key.home)
        publish = ['eustore-publish-image', '-b', BUCKET, '--sign-key',
                   'store@example.com']
        run(operator, *(publish + [
            '-t', os.path.join(images, 'demo-centos-6.5-x86_64.tgz'),
            '-i', 'centos-6.5-x86_64', '-s', 'CentOS 6.5, single kernel',
            '-a', 'x86_64', '--os', 'centos', '--image-version', '6.5']))
        run(operator, *(publish + [
            '-t', os.path.join(images, 'demo-debian-7-i386.tgz'),
            '-i', 'debian-7-i386', '-s', 'Debian 7, a kernel per hypervisor',
            '-a', 'i386', '--os', 'debian', '--image-version', '7']))

        store_url = '{0}{1}/'.format(storage.url, BUCKET)
        purge = []
        if find_varnishd():
            cache = VarnishCache('127.0.0.1', storage.port, '/' + BUCKET)
            started.append(cache)
            store_url = cache.url
            purge = ['--purge', cache.url]
            print('\n=== Varnish (deploy/varnish/eustore.vcl) serves the '
                  'store at ' + store_url)
        else:
            print('\n=== varnishd is not installed (scripts/setup installs '
                  'it): the store is read straight from its bucket')

        user = dict(os.environ, EUSTORE_URL=store_url,
                    XDG_CACHE_HOME=os.path.join(workdir, 'cache'))
        run(user, 'eustore-describe-images', '--trusted-key', trusted)
        print('\n=== A third image, and the cache purged of the old catalog')
        run(operator, *(publish + purge + [
            '-t', os.path.join(images, 'demo-fedora-20-x86_64-hvm.tgz'),
            '-i', 'fedora-20-x86_64', '-s', 'Fedora 20, HVM', '-a', 'x86_64',
            '--os', 'fedora', '--image-version', '20']))
        run(user, 'eustore-describe-images', '-v', '--trusted-key', trusted)
        run(user, 'eustore-check-store', '--trusted-key', trusted)

        print('\n=== A user installs one into their cloud')
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
        run(eucarc, 'eustore-install-image', '--trusted-key', trusted,
            '-i', 'fedora-20-x86_64', '-b', 'demo-images', '--no-progress')

        print('\n=== Somebody alters the catalog by one byte: it is refused')
        storage_client = direct_cloud(storage)
        catalog = storage_client.get_object(BUCKET, 'catalog')
        storage_client.put_object(BUCKET, 'catalog', catalog.replace(
            b'CentOS 6.5', b'KentOS 6.5'), acl='public-read')
        for cache in started:
            if isinstance(cache, VarnishCache):
                cache.purge('catalog')
        run(user, 'eustore-describe-images', '--trusted-key', trusted,
            expect=1)
    finally:
        for part in reversed(started):
            part.stop() if hasattr(part, 'stop') else part.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
