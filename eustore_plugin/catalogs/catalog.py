# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The image store's catalog: what it says, read leniently, with no I/O.

Catalogs are hand-edited JSON documents, ``{"images": [{...}, ...]}``, in
several historical dialects (docs/formats.md, "eustore catalogs"): the
seed's fields, euca2ools 2.x's ``hypervisors-supported``/``single-kernel``
and numeric checksum names, and 3.0's ``virtualization_type``.  Unknown
fields are kept, never fatal.  An entry that cannot be an image at all (not
an object, or no name) is skipped with a warning rather than failing the
whole listing: one bad hand edit should not hide a store's other images,
and such an entry could never be installed by name anyway.

A catalog is also attacker input: its JSON is read with its nesting bounded,
and numbers no field can hold (NaN, Infinity, 1e999, 30 digits) read as no
value (:func:`load_json`), so they cost their entry a field, not the store
its listing.  Its top level may carry what keeps a signed catalog from
being replayed:
``serial`` (raised by every publish), ``generated`` and ``valid-until``
(UTC, ``YYYY-MM-DDThh:mm:ssZ``).
"""

from __future__ import absolute_import, unicode_literals

import collections
import difflib
import fnmatch
import json
import re

import six
import six.moves.urllib_parse as urlparse

from eustore_plugin.errors import EustoreError
from eustore_plugin.limits import DISK_FILE, MIB, TARBALL, SizeLimit
from eustore_plugin.urlkeys import unquote_path
from eustore_plugin.values import as_count, parse_utc, utc_text

# Fields with a meaning of their own; everything else lands in ``extra``.
TEXT_FIELDS = ('name', 'os', 'architecture', 'version', 'description', 'url',
               'date', 'stamp', 'recipe', 'contact')
HYPERVISORS_FIELD = 'hypervisors-supported'
SINGLE_KERNEL_FIELD = 'single-kernel'
VIRT_TYPE_FIELD = 'virtualization_type'
SIZE_FIELD = 'size'
DIGEST_FIELDS = ('md5', 'sha256')
KNOWN_FIELDS = (TEXT_FIELDS + (HYPERVISORS_FIELD, SINGLE_KERNEL_FIELD,
                               VIRT_TYPE_FIELD, SIZE_FIELD) + DIGEST_FIELDS)

_TRUE_WORDS = ('true', 'yes', '1', 'on')
_FALSE_WORDS = ('false', 'no', '0', 'off', '')
_CHECKSUM_NAME_RE = re.compile(r'^[0-9]{10}$')
_HEX_RE = re.compile(r'^[0-9a-fA-F]+$')
# How an image boots, as EC2 names it; a store may say (``boot_mode``).
BOOT_MODES = ('legacy-bios', 'uefi', 'uefi-preferred')


# Deeper than any catalog or index is nested; Python's own parser would
# fail much deeper with a RecursionError nobody can read.
MAX_JSON_DEPTH = 64
# Digits in a JSON integer: sizes stop at 10 GiB; more is not a number but
# an attempt to make int() spend quadratic time.
MAX_INT_DIGITS = 20
SERIAL_FIELD = 'serial'
GENERATED_FIELD = 'generated'
VALID_UNTIL_FIELD = 'valid-until'


class CatalogError(EustoreError):
    """The catalog as a whole cannot be used."""


class UnknownImageError(EustoreError, LookupError):
    def __init__(self, name, suggestions):
        self.name = name
        self.suggestions = suggestions
        if suggestions:
            hint = 'closest names: {0}'.format(', '.join(suggestions))
        else:
            hint = 'run eustore-describe-images to list them'
        EustoreError.__init__(self, 'the image store has no image named '
                              '"{0}"; {1}'.format(name, hint))


def closest_names(name, names):
    """Up to five of ``names`` that look like ``name``, best first."""
    # A name over three times as long cannot reach the cutoff (the ratio is
    # at most twice the shorter length over the sum): left out, so that a
    # catalog of long names does not cost a comparison each of its length.
    longest = 3 * len(name)
    return difflib.get_close_matches(name, [other for other in names
                                            if other and
                                            len(other) <= longest],
                                     n=5, cutoff=0.5)


def _no_constant(name):
    # NaN and Infinity are no size, serial or count: read as no value, so
    # that one odd field costs its entry that field, not the catalog.
    return None


def _bounded_int(digits):
    if len(digits.lstrip('-')) > MAX_INT_DIGITS:
        return None
    return int(digits)


def _too_deep(data, limit):
    """Whether parsed JSON nests deeper than ``limit`` (walked, not
    recursed: the caller's code must not be the one to recurse)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in value
                     if isinstance(item, (dict, list)))
    return False


def load_json(document, what):
    """
    Parse JSON from a store (bytes or text) with its nesting, integers and
    constants bounded; raises CatalogError naming ``what`` ("the catalog at
    URL").  A UTF-8 BOM is allowed, as hand-edited files have them.
    """
    if isinstance(document, six.binary_type):
        try:
            document = document.decode('utf-8-sig')
        except UnicodeDecodeError:
            raise CatalogError('{0} is not UTF-8 text; check the store '
                               'URL'.format(what))
    elif document[:1] == u'\ufeff':
        document = document[1:]
    too_deep = CatalogError('{0} nests deeper than {1} levels, which no '
                            'catalog does; check the store URL'.format(
                                what, MAX_JSON_DEPTH))
    try:
        data = json.loads(document, parse_int=_bounded_int,
                          parse_constant=_no_constant,
                          object_pairs_hook=collections.OrderedDict)
    except RuntimeError:  # RecursionError: the parser's own depth limit
        raise too_deep
    except ValueError as err:
        raise CatalogError('{0} is not valid JSON ({1}); check the store '
                           'URL'.format(what, err))
    if _too_deep(data, MAX_JSON_DEPTH):
        raise too_deep
    return data


def _as_text(value):
    if value is None:
        return None
    if isinstance(value, six.binary_type):
        value = value.decode('utf-8')
    if isinstance(value, bool):
        return six.text_type(value).lower()
    return six.text_type(value)


def _as_bool(value):
    """The catalogs' booleans: real ones, or words such as "True"."""
    if value is None or isinstance(value, bool):
        return value
    word = _as_text(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def _as_list(value):
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(_as_text(item).strip() for item in value
                     if item is not None and _as_text(item).strip())
    return tuple(item.strip() for item in _as_text(value).split(',')
                 if item.strip())


class DiskImage(object):
    """
    A whole-disk image a store offers for an image (simplestreams'
    disk1.img, a virt-builder template): installed as an HVM machine image
    once it is a raw disk.  ``size`` and the digests are of the file as
    stored; ``disk_format`` is 'raw' or 'qcow2'; ``compression`` 'xz' or
    None; ``virtual_size`` the raw disk's size when the store says.
    """

    def __init__(self, location, size=None, sha256=None, sha512=None,
                 md5=None, disk_format='raw', compression=None,
                 virtual_size=None, boot_mode=None):
        self.location = location
        self.boot_mode = boot_mode
        self.size = size
        self.sha256 = sha256
        self.sha512 = sha512
        self.md5 = md5
        self.disk_format = disk_format
        self.compression = compression
        self.virtual_size = virtual_size
        self.name_checksum = None

    @property
    def size_limit(self):
        """
        The most its file may have, whatever the store says (limits.py): a
        little more than the raw disk it holds, when the store gives that
        size (xz's headers and qcow2's tables add under 1%, and a few
        clusters of up to 2 MiB), else what any disk image file may have.
        """
        if self.virtual_size is None:
            return DISK_FILE
        size = self.virtual_size + self.virtual_size // 64 + 16 * MIB
        if size >= DISK_FILE.size:
            return DISK_FILE
        return SizeLimit(size, 'disk image file of a {0}-byte disk'.format(
            self.virtual_size))

    def to_dict(self):
        return dict((name, getattr(self, name)) for name in (
            'location', 'size', 'sha256', 'sha512', 'md5', 'disk_format',
            'compression', 'virtual_size'))


class CatalogImage(object):
    """
    One image as the store describes it: the eustore catalog's fields, the
    tarball they name (``location``, ``size``, digests), and, for stores
    of other kinds (sources.py), a whole-disk image (``disk``).
    """

    # What -v adds to a listing, for this kind of store.
    verbose_columns = ('date', 'stamp', 'recipe', 'contact')
    # The most its tarball may have, whatever the store says (limits.py).
    size_limit = TARBALL
    source_format = 'eustore'
    disk = None
    hidden = False
    aliases = ()
    sha512 = None

    def __init__(self, entry, catalog_url=None):
        self.fields = dict(entry)
        for field in TEXT_FIELDS:
            setattr(self, field, _as_text(entry.get(field)))
        if isinstance(entry.get('name'), six.integer_types) and \
                not isinstance(entry.get('name'), bool):
            # A checksum name written as a JSON number lost its zero padding.
            self.name = '{0:010d}'.format(entry['name'])
        self.hypervisors = _as_list(entry.get(HYPERVISORS_FIELD))
        self.single_kernel = _as_bool(entry.get(SINGLE_KERNEL_FIELD))
        virt_type = _as_text(entry.get(VIRT_TYPE_FIELD))
        self.virtualization_type = virt_type.strip().lower() \
            if virt_type and virt_type.strip() else None
        self.size = self._parse_size(entry.get(SIZE_FIELD))
        self.md5 = self._parse_digest(entry, 'md5', 32)
        self.sha256 = self._parse_digest(entry, 'sha256', 64)
        self.extra = dict((key, val) for key, val in entry.items()
                          if key not in KNOWN_FIELDS)
        if self.url and catalog_url:
            self.location = urlparse.urljoin(catalog_url, self.url)
        else:
            self.location = self.url

    @staticmethod
    def _parse_size(value):
        return as_count(value)

    @staticmethod
    def _parse_digest(entry, field, length):
        value = _as_text(entry.get(field))
        if value and len(value.strip()) == length and _HEX_RE.match(value):
            return value.strip().lower()
        return None

    @property
    def name_checksum(self):
        """
        The euca2ools 2.x integrity check: a 10-digit name that is the CRC-32
        of the hex MD5 digest (as text) of the whole tarball.
        """
        if self.name and _CHECKSUM_NAME_RE.match(self.name):
            return int(self.name)
        return None

    @property
    def boot_mode(self):
        """How the image boots (BOOT_MODES), when the entry says: its
        ``boot_mode``, else its whole-disk image's."""
        said = _as_text(self.fields.get('boot_mode'))
        said = said.strip().lower() if said else None
        if said in BOOT_MODES:
            return said
        return self.disk.boot_mode if self.disk is not None else None

    @property
    def is_hvm(self):
        return self.virtualization_type == 'hvm'

    def to_dict(self):
        """Everything the catalog said, normalized, for machine output."""
        data = dict(self.extra)
        for field in TEXT_FIELDS:
            if getattr(self, field) is not None:
                data[field] = getattr(self, field)
        data['hypervisors'] = list(self.hypervisors)
        data['single_kernel'] = self.single_kernel
        data['virtualization_type'] = self.virtualization_type
        data['size'] = self.size
        data['md5'] = self.md5
        data['sha256'] = self.sha256
        data['location'] = self.location
        data['store_format'] = self.source_format
        if self.disk is not None:
            data['disk'] = self.disk.to_dict()
        return data

    def verbose_values(self):
        return [self.fields.get(column) if column not in TEXT_FIELDS else
                getattr(self, column) for column in self.verbose_columns]

    def __repr__(self):
        return 'CatalogImage({0!r})'.format(self.name)


class Catalog(object):
    """An image store's list of images, in catalog order."""

    def __init__(self, images, url=None, warnings=(), serial=None,
                 generated=None, valid_until=None):
        self.images = list(images)
        self.url = url
        self.warnings = list(warnings)
        # What the signed text says of its own age (seconds since 1970).
        self.serial = serial
        self.generated = generated
        self.valid_until = valid_until
        # The fingerprint of the OpenPGP key whose signature of the catalog
        # was verified, if one was.
        self.signed_by = None

    @classmethod
    def parse(cls, document, url=None):
        """
        Build a catalog from the raw JSON ``document`` (bytes or text) found
        at ``url``; image URLs are resolved against ``url``.
        """
        where = ' at {0}'.format(url) if url else ''
        data = load_json(document, 'the catalog' + where)
        if not isinstance(data, dict) or \
                not isinstance(data.get('images'), list):
            raise CatalogError('the catalog{0} has no "images" list; is this '
                               'an image store catalog?'.format(where))
        images = []
        warnings = []
        seen = set()
        for position, entry in enumerate(data['images'], 1):
            if not isinstance(entry, dict):
                warnings.append('skipped catalog entry {0}: not a JSON object'
                                .format(position))
                continue
            image = CatalogImage(entry, url)
            if not image.name or not image.name.strip():
                warnings.append('skipped catalog entry {0}: it has no name'
                                .format(position))
                continue
            if image.name in seen:
                warnings.append('catalog lists image "{0}" more than once; '
                                'installs use the first'.format(image.name))
            seen.add(image.name)
            images.append(image)
        valid_until = data.get(VALID_UNTIL_FIELD)
        if valid_until is not None and parse_utc(valid_until) is None:
            # Unreadable: treat as expired rather than as "forever".
            warnings.append('the catalog\'s "{0}" is not a UTC time; it is '
                            'taken as expired'.format(VALID_UNTIL_FIELD))
        return cls(images, url=url, warnings=warnings,
                   serial=as_count(data.get(SERIAL_FIELD)),
                   generated=parse_utc(data.get(GENERATED_FIELD)),
                   valid_until=parse_utc(valid_until) if valid_until is None
                   or parse_utc(valid_until) is not None else 0)

    def find(self, name, architecture=None):
        """
        The image called ``name`` (or having it as an alias); among several
        of that name (a virt-builder index has one per architecture), the
        one for ``architecture``.
        """
        found = [image for image in self.images if image.name == name] or \
            [image for image in self.images if name in image.aliases]
        if architecture and len(found) > 1:
            found = [image for image in found if (image.architecture or '')
                     .lower() == architecture.lower()] or found
        if len(found) > 1 and len(set(image.architecture
                                      for image in found)) > 1:
            raise EustoreError(
                'the image store has "{0}" for several architectures ({1}); '
                'choose one with -a'.format(name, ', '.join(sorted(
                    image.architecture or '?' for image in found))))
        if found:
            return found[0]
        raise UnknownImageError(name, closest_names(
            name, [image.name for image in self.images]))

    def select(self, names=None, oses=None, architectures=None):
        """
        The images matching every given criterion: any of the name glob
        patterns, any of the operating systems, any of the architectures
        (case-insensitive, as catalogs are hand-written).
        """
        def matches_any(value, choices, compare):
            return not choices or any(compare(value or '', choice)
                                      for choice in choices)

        def same_word(value, choice):
            return value.lower() == choice.lower()

        def glob_match(value, pattern):
            return fnmatch.fnmatchcase(value, pattern)

        return [image for image in self.images
                if not image.hidden and
                matches_any(image.name, names, glob_match) and
                matches_any(image.os, oses, same_word) and
                matches_any(image.architecture, architectures, same_word)]


# ------------------------------------------------------------------ editing
# The publisher's side.  A catalog may be hand-edited too, so an edit keeps
# every other entry, field and field order as it was.

def _load_for_edit(document):
    if document is None:
        return collections.OrderedDict([('images', [])])
    try:
        data = load_json(document, 'the store\'s catalog')
    except CatalogError as err:
        raise CatalogError('{0}; repair it by hand before publishing'.format(
            six.text_type(err).split('; check the store URL')[0]))
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise CatalogError('the store\'s catalog has no "images" list; '
                           'repair it by hand before publishing')
    return data


def _stamped(data, now, valid_for=None):
    """
    ``data`` with a serial one higher than before, ``generated`` = ``now``
    and, if ``valid_for`` (seconds) is given, ``valid-until``; the three
    come first, as a reader looks for them there.
    """
    if now is None:
        return data
    serial = (as_count(data.get(SERIAL_FIELD)) or 0) + 1
    stamped = collections.OrderedDict([
        (SERIAL_FIELD, serial), (GENERATED_FIELD, utc_text(now))])
    if valid_for:
        stamped[VALID_UNTIL_FIELD] = utc_text(now + valid_for)
    for key, value in data.items():
        if key not in (SERIAL_FIELD, GENERATED_FIELD, VALID_UNTIL_FIELD):
            stamped[key] = value
    return stamped


def _dump(data):
    text = json.dumps(data, indent=2, separators=(',', ': '),
                      ensure_ascii=False) + u'\n'
    return text.encode('utf-8') if isinstance(text, six.text_type) \
        else text


def _entry_name(entry):
    return CatalogImage(entry).name if isinstance(entry, dict) else None


def catalog_with_image(document, entry, now=None, valid_for=None):
    """
    The catalog ``document`` (bytes, or None for a new store) with ``entry``
    added, or put in place of the entry of the same name, and stamped (see
    :func:`_stamped`) when ``now`` is given.  Returns the new document's
    bytes and the entry replaced (None if it was added).
    """
    data = _load_for_edit(document)
    images = data['images']
    name = _entry_name(entry)
    replaced = None
    for index, old in enumerate(images):
        if _entry_name(old) == name:
            images[index], replaced = entry, old
            break
    else:
        images.append(entry)
    return _dump(_stamped(data, now, valid_for)), replaced


def catalog_without_image(document, name, now=None, valid_for=None):
    """
    The catalog ``document`` without the image ``name``, stamped when
    ``now`` is given: the new bytes and the entry removed.  Raises
    UnknownImageError when there is none.
    """
    data = _load_for_edit(document)
    images = data['images']
    for index, old in enumerate(images):
        if _entry_name(old) == name:
            del images[index]
            return _dump(_stamped(data, now, valid_for)), old
    raise UnknownImageError(name, closest_names(
        name, [_entry_name(old) for old in images]))


def store_key(url):
    """
    The object key, relative to the store's root, that a catalog url names
    once a client has resolved it (``./images/x``, ``images//x`` and
    ``images/%78`` all name ``images/x``); None for a url that leaves the
    store (absolute, another host, or above its root).
    """
    if not isinstance(url, six.string_types) or not url.strip():
        return None
    parsed = urlparse.urlparse(url.strip())
    if parsed.scheme or parsed.netloc or parsed.path.startswith('/'):
        return None
    path = unquote_path(parsed.path)
    if path.startswith('/'):
        return None
    parts = []
    for part in path.split('/'):
        if part in ('', '.'):
            continue
        if part == '..':
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return '/'.join(parts) or None


def tarball_keys(document):
    """The store keys a catalog's entries refer to (see :func:`store_key`)."""
    keys = set()
    for entry in _load_for_edit(document)['images']:
        if isinstance(entry, dict):
            key = store_key(entry.get('url'))
            if key:
                keys.add(key)
    return keys
