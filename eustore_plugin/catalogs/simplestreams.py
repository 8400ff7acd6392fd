# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Simplestreams image lists (Ubuntu's cloud images, CirrOS), read leniently,
with no I/O.

A simplestreams mirror is a directory holding ``streams/v1/index.json``
(``"format": "index:1.0"``).  Its ``index`` names, by content id, the
products files of the mirror; those whose ``datatype`` is
``image-downloads`` and ``format`` is ``products:1.0`` list files to
download (the others list image ids in particular clouds, which are of no
use to another cloud).  A products file is a tree::

    products -> <product> -> versions -> <version> -> items -> <item>

where an item is one file: ``ftype`` (what it is: ``disk1.img``,
``tar.gz``...), ``path``, ``size``, ``sha256``, ``md5``.  Every other
scalar field, at any level from the document's top down, is an attribute
(``arch``, ``os``, ``release``, ``version``, ``label``, ``pubname``...) of
everything below it, a lower level overriding a higher one: Ubuntu sets
``arch`` on the product and ``pubname`` on the version, CirrOS sets
``version`` on the version.  Paths are relative to the mirror, the URL the
``streams/`` directory is in, not to the products file.

The documents are the mirror's (or whoever serves them): a product,
version or item that is not what the format says is skipped with a
warning, so that one bad entry does not hide the rest; a document that is
not of the format at all raises :class:`SimplestreamsError`.  An item
whose path would leave the mirror is skipped (see sourceformat.py).
Only fixed levels of the tree are walked and only scalar attributes are
kept, so however deep a hostile
document nests, nothing here recurses into it.  Inherited attributes are
looked up the tree as they are asked for (:class:`Attributes`), never
copied down into each version and item: a document with thousands of
attributes at its top and thousands of items would otherwise cost their
product in memory and time, however small it is
(docs/threat-model.md, "endless data").

Version keys are build serials ("20240101", "20240101.1"), compared by
:func:`version_key`; :func:`newest_versions` picks each product's newest.
"""

from __future__ import absolute_import

import collections
import json
import math

import six
from six.moves.collections_abc import Mapping
import six.moves.urllib_parse as urlparse

from eustore_plugin.catalogs.sourceformat import (MAX_SIZE, SourceFormatError,
                                                  UnsafePathError,
                                                  as_directory, describe,
                                                  directory_url,
                                                  ec2_architecture, hex_digest,
                                                  resolve_under, version_key)

INDEX_FORMAT = 'index:1.0'
PRODUCTS_FORMAT = 'products:1.0'
DOWNLOADS_DATATYPE = 'image-downloads'
# The tree's levels: their names are never attributes.
_CONTAINERS = ('products', 'versions', 'items')
# An item's own fields, kept apart from its attributes.
ITEM_FIELDS = ('ftype', 'path', 'size', 'sha256', 'md5')
_SCALARS = six.string_types + six.integer_types + (float, type(None))
_STREAMS_DIR = '/streams/'

__all__ = ['INDEX_FORMAT', 'PRODUCTS_FORMAT', 'DOWNLOADS_DATATYPE',
           'SimplestreamsError', 'ProductsRef', 'Item', 'Version',
           'document_kind', 'mirror_root', 'parse_index', 'parse_products',
           'newest_versions', 'version_key', 'ec2_architecture']


class SimplestreamsError(SourceFormatError):
    """The document is not a simplestreams index or products file."""


class ProductsRef(collections.namedtuple(
        'ProductsRef',
        'url content_id datatype format path mirror_url products')):
    """
    One products file an index names: its absolute ``url``, the
    ``content_id``, ``datatype`` and ``format`` the index gives it, its
    ``path`` as written, the ``mirror_url`` its items' paths are relative
    to, and the ``products`` (names) the index says it holds.
    """
    __slots__ = ()


class Item(object):
    """One file of a version: ``url`` is absolute, ``size`` an int or
    None, the digests lowercase hex or None; ``attributes`` are the
    version's with the item's own added."""

    def __init__(self, name, ftype, path, url, size, sha256, md5,
                 attributes):
        self.name = name
        self.ftype = ftype
        self.path = path
        self.url = url
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.attributes = attributes

    def __repr__(self):
        return 'Item({0!r}, ftype={1!r}, url={2!r})'.format(
            self.name, self.ftype, self.url)


class Version(object):
    """One version of a product: its files (``items``, by item name) and
    the attributes of the document, the product and the version merged."""

    def __init__(self, product, version, attributes, items):
        self.product = product
        self.version = version
        self.attributes = attributes
        self.items = items
        pubname = attributes.get('pubname')
        self.pubname = pubname if isinstance(pubname, six.string_types) \
            and pubname.strip() else None

    @property
    def architecture(self):
        """The EC2 name of the ``arch`` attribute, or None."""
        return ec2_architecture(self.attributes.get('arch'))

    def __repr__(self):
        return 'Version({0!r}, {1!r})'.format(self.product, self.version)


def document_kind(data):
    """'index', 'products' or None: what the parsed JSON ``data`` says it
    is by its ``format``."""
    if not isinstance(data, dict):
        return None
    kind = data.get('format')
    if kind == INDEX_FORMAT:
        return 'index'
    if kind == PRODUCTS_FORMAT:
        return 'products'
    return None


def mirror_root(url):
    """
    The mirror a simplestreams document at ``url`` belongs to: the URL
    the ``streams/`` directory of its path is in (for
    ``https://host/releases/streams/v1/index.json``,
    ``https://host/releases/``), or, for a document elsewhere, its own
    directory.
    """
    parts = urlparse.urlsplit(directory_url(url))
    path = parts.path
    marker = path.rfind(_STREAMS_DIR)
    if marker >= 0:
        path = path[:marker + 1]
    elif path.startswith(_STREAMS_DIR[1:]):  # a relative URL
        path = ''
    return urlparse.urlunsplit((parts.scheme, parts.netloc, path, '', ''))


def _where(url):
    return u' at {0}'.format(url) if url else u''


def _load(document, what, url):
    """The parsed JSON of ``document``: given parsed, or as bytes/text."""
    if isinstance(document, six.binary_type):
        try:
            document = document.decode('utf-8-sig')
        except UnicodeDecodeError:
            raise SimplestreamsError(
                u'the simplestreams {0}{1} is not UTF-8 text; check the URL'
                .format(what, _where(url)))
    if not isinstance(document, six.text_type):
        return document
    try:
        return json.loads(document)
    except ValueError as err:
        raise SimplestreamsError(
            u'the simplestreams {0}{1} is not valid JSON ({2}); check the '
            u'URL'.format(what, _where(url), six.text_type(err)))
    except RuntimeError:  # RecursionError on Python 3
        raise SimplestreamsError(
            u'the simplestreams {0}{1} nests too deeply to be read; it is '
            u'not a simplestreams document'.format(what, _where(url)))


def _names(mapping, warnings, what):
    """The keys of ``mapping`` that are text, sorted, so the same document
    reads the same on every Python (2.7's json makes unordered dicts)."""
    names = []
    for name in mapping:
        if isinstance(name, six.string_types):
            names.append(name)
        else:
            warnings.append(u'skipped {0} named {1}: a name is text'
                            .format(what, describe(name)))
    return sorted(names)


class Attributes(Mapping):
    """
    The attributes of one level of the tree: its own scalar fields, then
    those of the levels above it, looked up when asked for.  Each level
    holds only its own fields, so memory and work grow with the document,
    not with its attributes times its items.
    """

    __slots__ = ('_own', '_parent')

    def __init__(self, own, parent=None):
        self._own = own
        self._parent = parent

    def _levels(self):
        level = self
        while level is not None:
            yield level._own
            level = level._parent

    def __getitem__(self, key):
        for own in self._levels():
            if key in own:
                return own[key]
        raise KeyError(key)

    def __contains__(self, key):
        return any(key in own for own in self._levels())

    def __iter__(self):
        seen = set()
        for own in self._levels():
            for key in own:
                if key not in seen:
                    seen.add(key)
                    yield key

    def __len__(self):
        return sum(1 for _ in self)

    def __repr__(self):
        return 'Attributes({0!r})'.format(dict(self.items()))


def _attributes(inherited, level, exclude=()):
    """The attributes of ``level``: its scalar fields over ``inherited``
    (an :class:`Attributes`, or None at the top)."""
    own = {}
    for key, value in level.items():
        if isinstance(key, six.string_types) and key not in _CONTAINERS \
                and key not in exclude and isinstance(value, _SCALARS):
            own[key] = value
    return Attributes(own, inherited)


# ------------------------------------------------------------------- index

def parse_index(document, url, mirror_url=None):
    """
    The products files of image downloads that the simplestreams index
    ``document`` (parsed JSON, or its bytes or text) found at ``url``
    names: a list of :class:`ProductsRef`, and a list of warnings.  Paths
    are resolved against ``mirror_url``, by default :func:`mirror_root`
    of ``url``.
    """
    data = _load(document, u'index', url)
    kind = document_kind(data)
    if kind == 'products':
        raise SimplestreamsError(
            u'the simplestreams document{0} is a products file, not an '
            u'index; give the URL of the mirror\'s streams/v1/index.json'
            .format(_where(url)))
    if kind != 'index':
        raise SimplestreamsError(
            u'the document{0} is not a simplestreams index (it has no '
            u'"format": "{1}"); give the URL of a mirror\'s '
            u'streams/v1/index.json'.format(_where(url), INDEX_FORMAT))
    index = data.get('index')
    if not isinstance(index, dict):
        raise SimplestreamsError(
            u'the simplestreams index{0} has no "index" object; the mirror '
            u'is broken, tell its operator'.format(_where(url)))
    mirror = as_directory(mirror_url) if mirror_url else mirror_root(url)
    refs, warnings = [], []
    for content_id in _names(index, warnings, u'index entry'):
        entry = index[content_id]
        skipped = u'skipped index entry "{0}"'.format(content_id)
        if not isinstance(entry, dict):
            warnings.append(u'{0}: not a JSON object'.format(skipped))
            continue
        datatype, kind = entry.get('datatype'), entry.get('format')
        if datatype != DOWNLOADS_DATATYPE:
            # Image ids in clouds (image-ids): normal, and not for us.
            continue
        if kind != PRODUCTS_FORMAT:
            warnings.append(u'{0}: its format is {1}, not "{2}"'.format(
                skipped, describe(kind), PRODUCTS_FORMAT))
            continue
        path = entry.get('path')
        try:
            products_url = resolve_under(mirror, path)
        except UnsafePathError as err:
            warnings.append(u'{0}: its path {1} {2}; paths must stay under '
                            u'the mirror'.format(skipped, describe(path),
                                                 err))
            continue
        products = entry.get('products')
        products = tuple(name for name in products
                         if isinstance(name, six.string_types)) \
            if isinstance(products, list) else ()
        refs.append(ProductsRef(products_url, content_id, datatype, kind,
                                path, mirror, products))
    return refs, warnings


# ---------------------------------------------------------------- products

def parse_products(document, url, mirror_url=None):
    """
    The versions of the simplestreams products file ``document`` (parsed
    JSON, or its bytes or text) found at ``url``: a list of
    :class:`Version`, by product name and then oldest version first, and
    a list of warnings.  Item paths are resolved against ``mirror_url``
    (the index's :attr:`ProductsRef.mirror_url`), by default
    :func:`mirror_root` of ``url``.
    """
    data = _load(document, u'products file', url)
    kind = document_kind(data)
    if kind == 'index':
        raise SimplestreamsError(
            u'the simplestreams document{0} is an index, not a products '
            u'file; read the products files it names'.format(_where(url)))
    if kind != 'products':
        raise SimplestreamsError(
            u'the document{0} is not a simplestreams products file (it has '
            u'no "format": "{1}"); check the URL'.format(
                _where(url), PRODUCTS_FORMAT))
    datatype = data.get('datatype')
    if datatype is not None and datatype != DOWNLOADS_DATATYPE:
        raise SimplestreamsError(
            u'the simplestreams products file{0} lists {1}, not "{2}"; use '
            u'one of the mirror\'s image download streams'.format(
                _where(url), describe(datatype), DOWNLOADS_DATATYPE))
    products = data.get('products')
    if not isinstance(products, dict):
        raise SimplestreamsError(
            u'the simplestreams products file{0} has no "products" object; '
            u'the mirror is broken, tell its operator'.format(_where(url)))
    mirror = as_directory(mirror_url) if mirror_url else mirror_root(url)
    top = _attributes(None, data, exclude=('format',))
    versions, warnings = [], []
    for name in _names(products, warnings, u'product'):
        versions.extend(_product_versions(name, products[name], top, mirror,
                                          warnings))
    return versions, warnings


def _product_versions(name, product, inherited, mirror, warnings):
    skipped = u'skipped product "{0}"'.format(name)
    if not isinstance(product, dict):
        warnings.append(u'{0}: not a JSON object'.format(skipped))
        return []
    versions = product.get('versions')
    if not isinstance(versions, dict):
        warnings.append(u'{0}: it has no "versions" object'.format(skipped))
        return []
    attributes = _attributes(inherited, product)
    found = []
    names = _names(versions, warnings, u'version of product "{0}"'
                   .format(name))
    for version_name in sorted(names, key=version_key):
        where = u'product "{0}" version "{1}"'.format(name, version_name)
        version = versions[version_name]
        if not isinstance(version, dict):
            warnings.append(u'skipped {0}: not a JSON object'.format(where))
            continue
        items = version.get('items')
        if not isinstance(items, dict):
            warnings.append(u'skipped {0}: it has no "items" object'
                            .format(where))
            continue
        version_attributes = _attributes(attributes, version)
        parsed = collections.OrderedDict()
        for item_name in _names(items, warnings, u'item of ' + where):
            item = _item(item_name, items[item_name], version_attributes,
                         mirror, u'{0} item "{1}"'.format(where, item_name),
                         warnings)
            if item is not None:
                parsed[item_name] = item
        if not parsed:
            warnings.append(u'skipped {0}: it has no usable items'
                            .format(where))
            continue
        found.append(Version(name, version_name, version_attributes, parsed))
    return found


def _item(name, item, inherited, mirror, where, warnings):
    if not isinstance(item, dict):
        warnings.append(u'skipped {0}: not a JSON object'.format(where))
        return None
    path = item.get('path')
    try:
        url = resolve_under(mirror, path)
    except UnsafePathError as err:
        warnings.append(u'skipped {0}: its path {1} {2}; paths must stay '
                        u'under the mirror'.format(where, describe(path),
                                                   err))
        return None
    size, problem = _size(item.get('size'))
    if problem:
        warnings.append(u'{0}: its size {1}; taken as unknown'.format(
            where, problem))
    digests = {}
    for algorithm, length in (('sha256', 64), ('md5', 32)):
        value = item.get(algorithm)
        digests[algorithm] = hex_digest(value, length)
        if value is not None and digests[algorithm] is None:
            warnings.append(u'{0}: its {1} {2} is not {3} hex digits; '
                            u'ignored'.format(where, algorithm,
                                              describe(value), length))
    ftype = item.get('ftype')
    if not isinstance(ftype, six.string_types):
        ftype = None
    return Item(name, ftype, path, url, size, digests['sha256'],
                digests['md5'],
                _attributes(inherited, item, exclude=ITEM_FIELDS))


def _size(value):
    """(the size in bytes or None, None or what is wrong with it)."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(
            value, six.integer_types + (float,)):
        return None, u'is {0}, not a number'.format(describe(value))
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return None, u'is not a finite number'
        if value != math.floor(value):
            return None, u'is {0}, not a whole number'.format(
                describe(value))
    if value < 0:
        return None, u'is negative'
    if value > MAX_SIZE:
        return None, u'is too large'
    return int(value), None


def newest_versions(versions):
    """The newest of each product's ``versions`` (by :func:`version_key`),
    in the order the products first appear."""
    newest = collections.OrderedDict()
    for version in versions:
        current = newest.get(version.product)
        if current is None or \
                version_key(version.version) > version_key(current.version):
            newest[version.product] = version
    return list(newest.values())
