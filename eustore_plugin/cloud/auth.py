# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The cloud's access keys, found where euca2ools users keep them: options,
eucarc variables and the euca2ools configuration.
"""

from __future__ import absolute_import

import os

from requestbuilder import Arg
from requestbuilder.auth import BaseAuth
from requestbuilder.auth.aws import HmacV4Auth
from requestbuilder.exceptions import AuthError
import six


class CloudAuth(HmacV4Auth):
    """
    requestbuilder's SigV4 auth, which also reads eucarc's EC2_ACCESS_KEY and
    EC2_SECRET_KEY, and says everywhere a missing key could come from.
    """

    def configure(self):
        if not (self.args.get('key_id') or self.args.get('secret_key') or
                os.getenv('AWS_ACCESS_KEY_ID') or os.getenv('AWS_ACCESS_KEY')):
            if os.getenv('EC2_ACCESS_KEY') and os.getenv('EC2_SECRET_KEY'):
                self.args['key_id'] = os.getenv('EC2_ACCESS_KEY')
                self.args['secret_key'] = os.getenv('EC2_SECRET_KEY')
        try:
            HmacV4Auth.configure(self)
        except AuthError as err:
            if 'secret' in six.text_type(err):
                what = ('secret key', '-S', 'AWS_SECRET_ACCESS_KEY',
                        'EC2_SECRET_KEY', 'secret-key')
            else:
                what = ('access key ID', '-I', 'AWS_ACCESS_KEY_ID',
                        'EC2_ACCESS_KEY', 'key-id')
            raise AuthError(
                'missing {0}: use {1}, set {2} (or {3}, as a eucarc does), '
                'or set "{4}" in your user\'s euca2ools configuration'
                .format(*what))


class CloudCredentialArgs(BaseAuth):
    """The cloud's access keys; the store itself is read anonymously."""

    ARGS = [Arg('-I', '--access-key-id', dest='key_id', metavar='KEY_ID',
                route_to=None, help='''access key ID for the cloud (default:
                $AWS_ACCESS_KEY_ID, $EC2_ACCESS_KEY, or "key-id" in the
                user's configuration)'''),
            Arg('-S', '--secret-key', dest='secret_key', metavar='KEY',
                route_to=None, help='''secret key for the cloud (default:
                $AWS_SECRET_ACCESS_KEY, $EC2_SECRET_KEY, or "secret-key")'''),
            Arg('--security-token', metavar='TOKEN', route_to=None,
                help='security token for temporary credentials')]
