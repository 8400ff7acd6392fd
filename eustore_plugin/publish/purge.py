# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Purging a store's caches (Varnish in front of it, deploy/README.md) of the
objects a publisher changed: a ``PURGE`` request per object and cache, sent
through requestbuilder like every other request (its retries, its --debug
trace, its TLS settings).  A cache that refuses gets a warning, not a
failure: the store is already right, and the cache's copy expires by itself.
"""

from __future__ import absolute_import

from requestbuilder.exceptions import ClientError, ServerError
from requestbuilder.service import BaseService
import six.moves.urllib_parse as urlparse

from eustore_plugin.output import warn


class CacheService(BaseService):
    """A cache in front of a store, at the URL it is given."""

    NAME = 'eustore-cache'
    DESCRIPTION = 'Store cache'

    def configure(self):
        # As for the store itself: verify TLS unless told not to.
        self.session_args.setdefault('verify', True)
        BaseService.configure(self)

    def purge(self, name, headers=None):
        """PURGE ``name`` (relative to the cache's URL)."""
        self.send_request(method='PURGE', path=name, headers=headers or {})


def purge_caches(config, cache_urls, names, user_agent=None, loglevel=None):
    """Ask each cache to drop its copies of ``names``."""
    headers = {'User-Agent': user_agent} if user_agent else {}
    for cache_url in cache_urls:
        base = cache_url if cache_url.endswith('/') else cache_url + '/'
        service = CacheService(config, loglevel=loglevel, url=base,
                               max_retries=1, timeout=30)
        service.configure()
        for name in names:
            url = urlparse.urljoin(base, name)
            try:
                service.purge(name, headers)
            except ServerError as err:
                if err.status_code != 404:
                    warn('the cache refused to purge {0} ({1} {2}); it '
                         'serves the old copy until it expires'.format(
                             url, err.status_code, err.reason or ''))
            except ClientError as err:
                warn('could not purge {0} ({1}); the cache serves the old '
                     'copy until it expires'.format(url, err))
