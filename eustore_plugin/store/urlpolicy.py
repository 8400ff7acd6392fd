# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Which URLs a store's documents may make the tools read.

A catalog is attacker input, signed or not: the URLs it names are fetched by
the user's machine, from the user's network position.  So what a catalog
may point to depends on where it came from (docs/threat-model.md, "local
files and local services"):

- a remote (http or https) catalog names only http(s) files, and none on a
  loopback, link-local or cloud metadata address, unless the store itself is
  on that kind of address (a store on localhost may name localhost);
- only a local (file://) catalog, which the user chose, names local files.

The same rules hold for every redirect a store answers with.  The address
check resolves the host name first (a name is only a label an attacker
chooses), and refuses if any address it has is forbidden.  The module's
rules are pure; ``resolve`` is the one piece that asks the resolver.
"""

from __future__ import absolute_import

import socket
import struct

import six
import six.moves.urllib_parse as urlparse

LOOPBACK = 'loopback'
LINK_LOCAL = 'link-local'
METADATA = 'metadata'
UNSPECIFIED = 'unspecified'
# Every cloud's instance metadata service, IPv4 and AWS's IPv6 one: never a
# store's files, whatever the store's own address.
_METADATA_ADDRESSES = ('169.254.169.254', 'fd00:ec2::254')


class UrlRefused(ValueError):
    """A URL the policy does not allow; the message says which rule."""


def _ipv4_class(packed):
    first, second = bytearray(packed[:2])
    if first == 127:
        return LOOPBACK
    if first == 0:
        return UNSPECIFIED
    if (first, second) == (169, 254):
        return LINK_LOCAL
    return None


def address_class(address):
    """
    LOOPBACK, LINK_LOCAL, METADATA, UNSPECIFIED or None (an ordinary
    address) for an IPv4 or IPv6 address in text form; None for anything
    that is not an address.
    """
    address = six.text_type(address).strip('[]').split('%', 1)[0]
    try:
        packed = socket.inet_pton(socket.AF_INET, address)
        family = socket.AF_INET
    except (socket.error, ValueError):
        try:
            packed = socket.inet_pton(socket.AF_INET6, address)
            family = socket.AF_INET6
        except (socket.error, ValueError):
            return None
    if family == socket.AF_INET:
        if socket.inet_ntop(family, packed) in _METADATA_ADDRESSES:
            return METADATA
        return _ipv4_class(packed)
    if socket.inet_ntop(family, packed) in _METADATA_ADDRESSES:
        return METADATA
    high, low = struct.unpack('>QQ', packed)
    if (high, low) == (0, 1):
        return LOOPBACK
    if (high, low) == (0, 0):
        return UNSPECIFIED
    if high >> 54 == 0x3fa:  # fe80::/10
        return LINK_LOCAL
    if high == 0 and low >> 32 == 0xffff:  # ::ffff:a.b.c.d
        mapped = packed[12:]
        if socket.inet_ntop(socket.AF_INET, mapped) in _METADATA_ADDRESSES:
            return METADATA
        return _ipv4_class(mapped)
    return None


def resolve(host):
    """Every address ``host`` has, as text; [] when it does not resolve."""
    if address_class(host) is not None or _is_literal(host):
        return [host.strip('[]')]
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.error, UnicodeError):
        return []
    return sorted(set(info[4][0] for info in infos))


def _is_literal(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.strip('[]').split('%', 1)[0])
            return True
        except (socket.error, ValueError):
            pass
    return False


class UrlPolicy(object):
    """
    The rules for one store: ``store_url`` is where its catalog (or index)
    was read from; ``resolver(host)`` gives a host's addresses.
    """

    def __init__(self, store_url, resolver=resolve):
        parsed = urlparse.urlparse(store_url)
        self.store_url = store_url
        self.local = parsed.scheme.lower() == 'file'
        self._resolver = resolver
        self._store_host = parsed.hostname or ''
        self._allowed = None

    def _allowed_classes(self):
        """The special kinds of address the store itself is on."""
        if self._allowed is None:
            self._allowed = set()
            if not self.local:
                for address in self._resolver(self._store_host):
                    kind = address_class(address)
                    if kind not in (None, METADATA):
                        self._allowed.add(kind)
        return self._allowed

    def refusal(self, url):
        """Why ``url`` may not be read for this store, or None."""
        parsed = urlparse.urlparse(url)
        scheme = parsed.scheme.lower()
        if scheme == 'file':
            if self.local:
                return None
            return ('a catalog read over the network may not name a local '
                    'file')
        if scheme not in ('http', 'https'):
            return 'only http and https URLs may be read'
        if not parsed.hostname:
            return 'the URL has no host'
        for address in self._resolver(parsed.hostname):
            kind = address_class(address)
            if kind == METADATA:
                return ('{0} is a cloud metadata address, which a store '
                        'may never name'.format(address))
            if kind is not None and kind not in self._allowed_classes():
                return ('{0} is a {1} address and the store is not on '
                        'one'.format(address, kind))
        return None

    def check(self, url, what):
        """Raise UrlRefused naming ``what`` and the rule, if refused."""
        reason = self.refusal(url)
        if reason is not None:
            raise UrlRefused(u'refusing {0} at {1}: {2}'.format(
                what, url, reason))
