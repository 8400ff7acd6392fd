# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Installing into moto as a user with a eucarc would, and looking at what an
install left there: the account's admin alias, the ids the command printed,
and the image inside an uploaded bundle, decoded by the standard tools.

The fixtures of the modules that install (imported there, and listed in a
tuple so that linters see them used): ``store``, the demo store on loopback
with its catalog's entries by os; ``eucarc``, a sourced eucarc pointing at
the proxied moto and that store; ``install``, eustore-install-image run
with it.
"""

from __future__ import absolute_import

import json
import os
import re

import pytest

from eustore_plugin.cloud.services import ListAccountAliases
from tests.support.bundles import decode_with_tools
from tests.support.http import StoreServer
from tests.support.moto import REGION

ACCOUNT = '123456789012'
INSTALL = 'eustore-install-image'
# The one line of an install interrupted by a signal, once it has removed
# what it made.
INTERRUPTED_AND_UNDONE = ('eustore-install-image: error: interrupted; what '
                          'this run uploaded or registered was removed')


class CreateAccountAlias(ListAccountAliases):
    pass


class DeleteAccountAlias(ListAccountAliases):
    pass


def set_admin(cloud, admin):
    """Make the account the cloud administrator's ("eucalyptus") or not."""
    aliases = cloud.account_aliases()
    if admin and 'eucalyptus' not in aliases:
        cloud._send(CreateAccountAlias, cloud.iam,
                    {'AccountAlias': 'eucalyptus'})
    if not admin and 'eucalyptus' in aliases:
        cloud._send(DeleteAccountAlias, cloud.iam,
                    {'AccountAlias': 'eucalyptus'})


def eucarc_env(moto, proxy, keys, store_url):
    """What sourcing a eucarc for ``moto`` (reached through ``proxy``, a
    CloudProxy: its S3 at ``proxy.s3_url``) and the store at ``store_url``
    puts in the environment."""
    user, cloud_keys = keys
    return {'EC2_URL': proxy.url, 'S3_URL': proxy.s3_url,
            'EUARE_URL': proxy.url, 'AWS_DEFAULT_REGION': REGION,
            'AWS_AUTH_REGION': REGION, 'AWS_ACCESS_KEY_ID': moto.key_id,
            'AWS_SECRET_ACCESS_KEY': moto.secret_key,
            'EC2_CERT': user.cert_path, 'EC2_PRIVATE_KEY': user.key_path,
            'EUCALYPTUS_CERT': cloud_keys.cert_path, 'EC2_USER_ID': ACCOUNT,
            'EUSTORE_URL': store_url}


def install_options(install_cloud):
    """
    The options every install into ``install_cloud`` needs: on Ceph RGW,
    which refuses the default canned ACL (aws-exec-read), ``--acl`` with
    one it takes (the cloud's ``bundle_acl``).
    """
    acl = getattr(install_cloud, 'bundle_acl', None)
    return ['--acl', acl] if acl else []


def installed_ids(result):
    """{'kernel': id, 'ramdisk': id, 'image': id} from the output."""
    assert result.returncode == 0, result.stderr
    ids = {}
    for line in result.lines:
        match = re.match(r'^Installed new (kernel|ramdisk|image) (\S+)$',
                         line)
        assert match, line
        ids[match.group(1)] = match.group(2)
    assert result.lines[-1].startswith('Installed new image ')
    return ids


def fetch_and_decode(cloud, bucket, manifest_key, cloud_keys, workdir):
    """The image inside an uploaded bundle, decoded by the standard tools."""
    os.mkdir(workdir)
    manifest = cloud.get_object(bucket, manifest_key)
    prefix = manifest_key.rsplit('/', 1)[0] + '/' if '/' in manifest_key \
        else ''
    for name in re.findall(r'<filename>(.*?)</filename>',
                           manifest.decode('utf-8')):
        with open(os.path.join(workdir, name), 'wb') as part:
            part.write(cloud.get_object(bucket, prefix + name))
    _, _, _, extracted = decode_with_tools(manifest, workdir,
                                           cloud_keys.key_path, workdir,
                                           key_field='ec2')
    (member,) = os.listdir(extracted)
    with open(os.path.join(extracted, member), 'rb') as image:
        return image.read()


def tags_sent(proxy, image_id):
    """{key: value} of the CreateTags calls made for ``image_id``."""
    tags = {}
    for call in proxy.form_requests('CreateTags'):
        if call.get('ResourceId.1') != image_id:
            continue
        number = 1
        while 'Tag.{0}.Key'.format(number) in call:
            tags[call['Tag.{0}.Key'.format(number)]] = \
                call['Tag.{0}.Value'.format(number)]
            number += 1
    return tags


@pytest.fixture
def store(demo_store_dir):
    server = StoreServer(demo_store_dir).start()
    with open(os.path.join(demo_store_dir, 'catalog')) as catalog:
        server.catalog = dict((image['os'], image) for image in
                              json.load(catalog)['images'])
    yield server
    server.stop()


@pytest.fixture
def eucarc(install_cloud, proxy, store, keys):
    """A sourced eucarc, pointing at the proxied moto and the demo store."""
    return eucarc_env(install_cloud, proxy, keys, store.url)


@pytest.fixture
def install(install_args, cli, eucarc):
    def run(*args, **kwargs):
        env = dict(eucarc, **kwargs.pop('env', {}))
        return cli(INSTALL, *(list(args) + install_args), env=env, **kwargs)
    return run
