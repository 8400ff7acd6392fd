#!/usr/bin/env python3
# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
See the tools work with no cloud of your own: a small image store served on
loopback, moto's S3/EC2/IAM server as the cloud (checking signatures), a
user with keys and certificates like a eucarc gives, and then the commands a
euca2ools user would type.  Everything is removed at the end.
"""

from __future__ import print_function

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from eustore_plugin.cloud import ListAccountAliases  # noqa: E402
from tests.bundle_helpers import KeyPair  # noqa: E402
from tests.cloud import REGION, MotoCloud, direct_cloud, \
    find_moto_server  # noqa: E402
from tests.storeserver import StoreServer  # noqa: E402


class CreateAccountAlias(ListAccountAliases):
    pass


def run(env, *command):
    print('\n$ ' + ' '.join(command))
    sys.stdout.flush()
    subprocess.check_call(command, env=env)


def main():
    workdir = tempfile.mkdtemp(prefix='eustore-demo-')
    store = cloud = None
    try:
        store_dir = os.path.join(workdir, 'store')
        subprocess.check_call([sys.executable, os.path.join(
            ROOT, 'scripts', 'make_demo_store.py'), store_dir])
        store = StoreServer(store_dir).start()
        cloud = MotoCloud(find_moto_server() or 'moto_server')
        # The demo user is the cloud administrator (account alias
        # "eucalyptus"), who alone may register kernels and ramdisks.
        admin = direct_cloud(cloud)
        admin._send(CreateAccountAlias, admin.iam,
                    {'AccountAlias': 'eucalyptus'})
        user, cloud_keys = KeyPair(workdir, 'user'), KeyPair(workdir, 'cloud')
        # What "source eucarc" would put in the environment.
        env = dict(os.environ, EUSTORE_URL=store.url, EC2_URL=cloud.url,
                   S3_URL=cloud.url, EUARE_URL=cloud.url,
                   AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID=cloud.key_id,
                   AWS_SECRET_ACCESS_KEY=cloud.secret_key,
                   EC2_CERT=user.cert_path, EC2_PRIVATE_KEY=user.key_path,
                   EUCALYPTUS_CERT=cloud_keys.cert_path,
                   EC2_USER_ID='123456789012')
        run(env, 'eustore-describe-images')
        run(env, 'eustore-describe-images', '-v', '--os', 'centos')
        run(env, 'eustore-install-image', '-i', 'centos-x86_64-demo',
            '-b', 'demo-images', '--no-progress')
        run(env, 'eustore-install-image', '-i', 'fedora-x86_64-hvm-demo',
            '-b', 'demo-images', '--no-progress')
    finally:
        if cloud is not None:
            cloud.stop()
        if store is not None:
            store.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
