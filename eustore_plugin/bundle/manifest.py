# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The bundle manifest (``<prefix>.manifest.xml``): building, signing and
parsing it.  No file or network I/O here; callers pass bytes in and out.

Why the XML is written by hand rather than through ElementTree: the
signature covers the exact bytes of ``<machine_configuration>`` followed by
``<image>``, so we must know those bytes before the document exists.  We
serialise both elements once (with proper escaping), sign them, and put
those same bytes into the file.  Everything is written without whitespace
between elements (like ec2-bundle-image), so a verifier that re-serialises
the elements gets the same bytes too.  Parsing uses the standard library's
ElementTree, so Python 3 needs no lxml; documents with a DOCTYPE are refused
(no entity tricks), and the signed bytes are cut out of the raw document,
checking that each signed element occurs exactly once, so that what is
verified is what is parsed.
"""

from __future__ import absolute_import, division, print_function

import collections
import re
import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import escape

import six

from eustore_plugin.bundle.errors import ManifestError

MANIFEST_VERSION = '2007-10-10'
DIGEST_ALGORITHM = 'SHA1'
CIPHER_ALGORITHM = 'AES-128-CBC'
IMAGE_TYPES = ('machine', 'kernel', 'ramdisk')
# ec2-bundle-image's documented scheme for machine images: the image is the
# root file system on sda1, then the first ephemeral disk and swap.
DEFAULT_MACHINE_BLOCK_DEVICE_MAPPINGS = (
    ('ami', 'sda1'),
    ('root', '/dev/sda1'),
    ('ephemeral0', 'sda2'),
    ('swap', 'sda3'),
)


class ManifestPart(collections.namedtuple('ManifestPart',
                                          'index filename digest')):
    """One part as the manifest lists it (digest: hex SHA-1 of the part
    file)."""
    __slots__ = ()


def _text(value):
    if isinstance(value, six.binary_type):
        value = value.decode('utf-8')
    return escape(six.text_type(value))


def _element(tag, content, attributes=()):
    """``<tag a="v">content</tag>``; ``content`` is already XML."""
    attrs = u''.join(u' {0}="{1}"'.format(name, _text(value))
                     for name, value in attributes)
    return u'<{0}{1}>{2}</{0}>'.format(tag, attrs, content)


def _leaf(tag, value, attributes=()):
    return _element(tag, _text(value), attributes)


def machine_configuration_xml(architecture, kernel_id=None, ramdisk_id=None,
                              block_device_mappings=(), product_codes=()):
    """The ``<machine_configuration>`` element, as UTF-8 bytes."""
    content = [_leaf('architecture', architecture)]
    if kernel_id:
        content.append(_leaf('kernel_id', kernel_id))
    if ramdisk_id:
        content.append(_leaf('ramdisk_id', ramdisk_id))
    if block_device_mappings:
        content.append(_element('block_device_mapping', u''.join(
            _element('mapping', _leaf('virtual', virtual) +
                     _leaf('device', device))
            for virtual, device in block_device_mappings)))
    if product_codes:
        content.append(_element('product_codes', u''.join(
            _leaf('product_code', code) for code in product_codes)))
    return _element('machine_configuration',
                    u''.join(content)).encode('utf-8')


def image_xml(name, user, image_type, digest, size, bundled_size,
              ec2_encrypted_key, user_encrypted_key, ec2_encrypted_iv,
              user_encrypted_iv, parts):
    """The ``<image>`` element, as UTF-8 bytes.  ``parts``: ManifestParts."""
    cipher = (('algorithm', CIPHER_ALGORITHM),)
    sha1 = (('algorithm', DIGEST_ALGORITHM),)
    parts_xml = u''.join(
        _element('part', _leaf('filename', part.filename) +
                 _leaf('digest', part.digest, sha1),
                 (('index', part.index),))
        for part in parts)
    content = [
        _leaf('name', name),
        _leaf('user', user),
        _leaf('type', image_type),
        _leaf('digest', digest, sha1),
        _leaf('size', size),
        _leaf('bundled_size', bundled_size),
        _leaf('ec2_encrypted_key', ec2_encrypted_key, cipher),
        _leaf('user_encrypted_key', user_encrypted_key, cipher),
        _leaf('ec2_encrypted_iv', ec2_encrypted_iv),
        _leaf('user_encrypted_iv', user_encrypted_iv),
        _element('parts', parts_xml, (('count', len(parts)),)),
    ]
    return _element('image', u''.join(content)).encode('utf-8')


def build_manifest(machine_configuration, image, sign, bundler_name,
                   bundler_version, bundler_release):
    """The whole manifest document, as bytes.

    ``machine_configuration`` and ``image`` are the serialised elements from
    the functions above; ``sign(data)`` returns the hex signature of
    ``data``.  The signed bytes go into the document unchanged.
    """
    signature = sign(machine_configuration + image)
    bundler = _element('bundler', _leaf('name', bundler_name) +
                       _leaf('version', bundler_version) +
                       _leaf('release', bundler_release))
    return b''.join([
        b'<?xml version="1.0" encoding="UTF-8"?>\n<manifest>',
        _leaf('version', MANIFEST_VERSION).encode('utf-8'),
        bundler.encode('utf-8'),
        machine_configuration,
        image,
        _leaf('signature', signature).encode('utf-8'),
        b'</manifest>\n',
    ])


class Manifest(object):
    """The fields of a parsed manifest.

    Attributes: ``version``, ``bundler`` (name, version, release),
    ``architecture``, ``kernel_id``, ``ramdisk_id`` (None when absent),
    ``block_device_mappings`` (list of (virtual, device)),
    ``product_codes``, ``name``, ``user``, ``image_type``, ``digest``,
    ``size``, ``bundled_size`` (ints), ``ec2_encrypted_key``,
    ``user_encrypted_key``, ``ec2_encrypted_iv``, ``user_encrypted_iv``,
    ``parts`` (ManifestParts by index), ``signature`` (hex) and
    ``signed_data`` (the bytes the signature covers).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)


_SAFE_FILENAME = re.compile(r'^[^/\\\x00]+$')


def _signed_element_bytes(data, tag):
    start_tag = '<{0}>'.format(tag).encode('ascii')
    end_tag = '</{0}>'.format(tag).encode('ascii')
    if data.count(start_tag) != 1 or data.count(end_tag) != 1:
        raise ManifestError(
            'the manifest must hold exactly one {0} element written as '
            '"<{0}>...</{0}>"; it is malformed'.format(tag))
    start = data.index(start_tag)
    end = data.index(end_tag) + len(end_tag)
    if end < start:
        raise ManifestError('the manifest\'s {0} element is malformed'
                            .format(tag))
    return data[start:end]


def _find(parent, path, required=True):
    node = parent.find(path)
    if node is None:
        if required:
            raise ManifestError('the manifest has no {0} element; it is not '
                                'a bundle manifest or is truncated'
                                .format(path))
        return None
    return node


def _find_text(parent, path, required=True):
    node = _find(parent, path, required)
    if node is None:
        return None
    text = (node.text or '').strip()
    if required and not text:
        raise ManifestError('the manifest\'s {0} element is empty'
                            .format(path))
    return text or None


def _find_int(parent, path):
    text = _find_text(parent, path)
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ManifestError('the manifest\'s {0} is not a byte count: {1!r}'
                            .format(path, text))
    return value


def _check_algorithm(node, path, expected):
    algorithm = node.get('algorithm', expected)
    if algorithm.upper() != expected:
        raise ManifestError('the manifest\'s {0} uses {1}; only {2} is '
                            'supported'.format(path, algorithm, expected))


def parse_manifest(data):
    """Parse manifest bytes into a Manifest; ManifestError if malformed.

    Checks structure only; the caller verifies the signature over
    ``signed_data``.
    """
    if not isinstance(data, six.binary_type):
        raise ManifestError('the manifest must be bytes, not {0}'
                            .format(type(data).__name__))
    if b'<!DOCTYPE' in data or b'<!ENTITY' in data:
        raise ManifestError('the manifest has a DOCTYPE; bundle manifests '
                            'never do, so it is refused')
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise ManifestError('the manifest is not well-formed XML ({0})'
                            .format(err))
    if root.tag != 'manifest':
        raise ManifestError('the document is a <{0}>, not a bundle '
                            '<manifest>'.format(root.tag))
    for tag in ('machine_configuration', 'image'):
        if len(root.findall(tag)) != 1:
            raise ManifestError('the manifest must hold exactly one <{0}>'
                                .format(tag))
    signed_data = (_signed_element_bytes(data, 'machine_configuration') +
                   _signed_element_bytes(data, 'image'))

    config = root.find('machine_configuration')
    image = root.find('image')
    mappings = [(_find_text(node, 'virtual'), _find_text(node, 'device'))
                for node in config.findall('block_device_mapping/mapping')]
    product_codes = [(node.text or '').strip() for node in
                     config.findall('product_codes/product_code')]

    _check_algorithm(_find(image, 'digest'), 'image/digest', DIGEST_ALGORITHM)
    for tag in ('ec2_encrypted_key', 'user_encrypted_key'):
        _check_algorithm(_find(image, tag), 'image/' + tag, CIPHER_ALGORITHM)
    image_type = _find_text(image, 'type')
    if image_type not in IMAGE_TYPES:
        raise ManifestError('the manifest\'s image type is {0!r}, not one of '
                            '{1}'.format(image_type, ', '.join(IMAGE_TYPES)))

    parts = _parse_parts(_find(image, 'parts'))
    bundler = _find(root, 'bundler', required=False)
    return Manifest(
        version=_find_text(root, 'version', required=False),
        bundler=tuple(_find_text(bundler, tag, required=False)
                      for tag in ('name', 'version', 'release'))
        if bundler is not None else (None, None, None),
        architecture=_find_text(config, 'architecture', required=False),
        kernel_id=_find_text(config, 'kernel_id', required=False),
        ramdisk_id=_find_text(config, 'ramdisk_id', required=False),
        block_device_mappings=mappings,
        product_codes=product_codes,
        name=_find_text(image, 'name'),
        user=_find_text(image, 'user', required=False),
        image_type=image_type,
        digest=_find_text(image, 'digest').lower(),
        size=_find_int(image, 'size'),
        bundled_size=_find_int(image, 'bundled_size'),
        ec2_encrypted_key=_find_text(image, 'ec2_encrypted_key'),
        user_encrypted_key=_find_text(image, 'user_encrypted_key'),
        ec2_encrypted_iv=_find_text(image, 'ec2_encrypted_iv'),
        user_encrypted_iv=_find_text(image, 'user_encrypted_iv'),
        parts=parts,
        signature=_find_text(root, 'signature'),
        signed_data=signed_data,
    )


def _parse_parts(parts_node):
    """The manifest's <parts>, checked: numbered 0 to N-1, plain file names,
    SHA-1 digests, as many as its count says."""
    parts = []
    for node in parts_node.findall('part'):
        try:
            index = int(node.get('index'))
        except (TypeError, ValueError):
            raise ManifestError('a manifest part has no numeric index')
        filename = _find_text(node, 'filename')
        if not _SAFE_FILENAME.match(filename) or filename in ('.', '..'):
            raise ManifestError('the manifest names a part {0!r}, which is '
                                'not a plain file name'.format(filename))
        digest_node = _find(node, 'digest')
        _check_algorithm(digest_node, 'part digest', DIGEST_ALGORITHM)
        parts.append(ManifestPart(index, filename,
                                  (digest_node.text or '').strip().lower()))
    parts.sort(key=lambda part: part.index)
    if [part.index for part in parts] != list(range(len(parts))) or \
            not parts:
        raise ManifestError('the manifest\'s parts are not numbered 0 to N-1; '
                            'it is malformed')
    count = parts_node.get('count')
    if count is not None and count.strip() != str(len(parts)):
        raise ManifestError('the manifest says it has {0} parts but lists {1}'
                            .format(count, len(parts)))
    return parts
