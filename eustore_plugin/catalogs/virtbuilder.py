# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
virt-builder repositories' indexes (libguestfs), read leniently, with no
I/O.

An index is UTF-8 text, one template to a section::

    [debian-12]
    name=Debian 12 (bookworm)
    osinfo=debian12
    arch=x86_64
    file=debian-12.xz
    checksum[sha512]=<128 hex digits>
    format=raw
    size=6442450944
    compressed_size=385656436
    expand=/dev/sda1
    notes=Debian 12 (bookworm)
     This is a minimal Debian install.

The section name is the os-version id users ask for; the same one may
appear once per architecture.  A line starting with a space or a tab
continues the value above it, without that first character (so a line
holding one space is an empty line of the value); ``#`` at the start of a
line makes a comment.  A key may carry a subkey, ``notes[fr]=``: those are
translations and are ignored, all but ``checksum[sha512]``, the SHA-512
of the file as stored (plain ``checksum=`` means the same).  ``file`` is
relative to the index's URL; ``size`` is the disk's virtual size,
``compressed_size`` the file's; ``format`` is raw (the default) or qcow2.

Repositories sign their index with ``gpg --clearsign``
(:func:`eustore_plugin.store.openpgp.verify_clearsigned` takes the signed text
out); this module reads the text that comes out.  OpenPGP signs text with
the spaces at the ends of its lines removed, and gpgv hands it out that
way, so here trailing spaces mean nothing, and an empty line between two
continuation lines is an empty line of the value (it was one space in the
file) rather than the end of it.

The index is the repository's (or whoever serves it): a section that is
not a usable template (no ``file``, a field given twice, an unknown
format) is skipped with a warning, and so is one whose file would lie
outside the index's directory (see sourceformat.py);
lines that mean nothing are ignored with a warning.  A document that is
not an index at all raises :class:`VirtBuilderError`.
"""

from __future__ import absolute_import

import collections
import re

import six

from eustore_plugin.catalogs.sourceformat import (MAX_SIZE, SourceFormatError,
                                                  UnsafePathError, describe,
                                                  directory_url,
                                                  ec2_architecture, hex_digest,
                                                  resolve_under)

FORMATS = ('raw', 'qcow2')
DEFAULT_FORMAT = 'raw'
CHECKSUM_KEYS = ('checksum[sha512]', 'checksum')
# Fields whose value is one line; the others (notes, and keys this module
# does not know) may continue on the following lines.
SINGLE_LINE_KEYS = ('name', 'osinfo', 'arch', 'file', 'format', 'size',
                    'compressed_size', 'revision', 'expand', 'lvexpand',
                    'hidden', 'aliases') + CHECKSUM_KEYS
# libguestfs's own grammar for section names, keys and subkeys.
_HEADER_RE = re.compile(r'^\[([-A-Za-z0-9._]+)\][ \t]*\Z')
_FIELD_RE = re.compile(r'^([-A-Za-z0-9_.]+)(?:\[([-A-Za-z0-9_,.]*)\])?=(.*)\Z')
_DECIMAL_RE = re.compile(r'^[0-9]+\Z')
_BLANKS = u' \t'
_CLEARSIGN_BEGIN = '-----BEGIN PGP SIGNED MESSAGE-----'
# Continuation lines of a key this module ignores.
_IGNORED = object()


class VirtBuilderError(SourceFormatError):
    """The document is not a virt-builder index."""


class Entry(object):
    """
    One template of the index: ``section`` is its os-version id; ``url``
    the absolute URL of ``file``; ``sha512`` lowercase hex or None;
    ``size`` (virtual) and ``compressed_size`` ints or None;
    ``architecture`` the EC2 name of ``arch``; ``compression`` 'xz' or
    None; ``fields`` every field of the section as written (subkeyed ones
    aside).
    """

    def __init__(self, section, fields, url, sha512, image_format, size,
                 compressed_size, revision, hidden, line=None):
        def text(key):
            return fields[key] if key in fields else None

        self.section = section
        self.line = line
        self.fields = fields
        self.name = text('name')
        self.osinfo = text('osinfo')
        self.arch = text('arch')
        self.architecture = ec2_architecture(self.arch)
        self.file = fields['file']
        self.url = url
        self.sha512 = sha512
        self.format = image_format
        self.size = size
        self.compressed_size = compressed_size
        self.revision = revision
        self.expand = text('expand')
        self.notes = text('notes')
        self.hidden = hidden
        self.aliases = tuple(fields.get('aliases', u'').split())
        self.compression = 'xz' if self.file.lower().endswith('.xz') \
            else None

    def __repr__(self):
        return 'Entry({0!r}, arch={1!r}, url={2!r})'.format(
            self.section, self.arch, self.url)


def _decode(document, warnings):
    if isinstance(document, six.binary_type):
        try:
            document = document.decode('utf-8')
        except UnicodeDecodeError:
            document = document.decode('utf-8', 'replace')
            warnings.append(u'the index is not valid UTF-8; the bytes that '
                            u'are not are shown as U+FFFD')
    if not isinstance(document, six.text_type):
        return None
    return document[1:] if document.startswith(u'\ufeff') else document


def _lines(text):
    """The lines of ``text``, with "\\n" or "\\r\\n" endings; not
    str.splitlines(), which also splits at form feeds and U+2028."""
    for line in text.split(u'\n'):
        yield line[:-1] if line.endswith(u'\r') else line


def looks_like_index(text):
    """Whether ``text`` (bytes or text) starts like a virt-builder index:
    its first line that is neither blank nor a comment is a [section]
    header."""
    text = _decode(text, [])
    if not text:
        return False
    for line in _lines(text):
        if line.startswith(u'#') or not line.strip():
            continue
        return bool(_HEADER_RE.match(line))
    return False


class _Section(object):
    def __init__(self, name, line):
        self.name = name
        self.line = line
        self.fields = collections.OrderedDict()  # key: [lines]
        self.repeated = []

    def shown(self):
        return u'[{0}] (line {1})'.format(self.name, self.line)


def _sections(text, warnings):
    """Split the index into sections; no meaning yet."""
    sections = []
    section = None      # None before the first header or in a bad one
    in_bad_section = False
    key = None          # the field continuation lines go on
    blanks = 0          # empty lines since the last continuation line
    for number, line in enumerate(_lines(text), 1):
        if line.startswith(u'#'):
            continue
        if not line:
            blanks += 1
            continue
        if line[0] in u' \t':
            if key is _IGNORED:
                continue
            if key is None:
                if section is not None:
                    warnings.append(u'line {0}: a continuation line with no '
                                    u'field above it; ignored'.format(number))
                continue
            section.fields[key].extend([u''] * blanks + [line[1:]])
            blanks = 0
            continue
        blanks = 0
        key = None
        header = _HEADER_RE.match(line)
        if header:
            section = _Section(header.group(1), number)
            sections.append(section)
            in_bad_section = False
            continue
        if line.startswith(u'['):
            warnings.append(
                u'line {0}: {1} is not a section header (an os-version id '
                u'is letters, digits, "-", "." and "_" in brackets); '
                u'skipped its section'.format(number, describe(line)))
            section, in_bad_section = None, True
            continue
        field = _FIELD_RE.match(line)
        if not field:
            if section is not None or not in_bad_section:
                warnings.append(u'line {0}: {1} is not a key=value field; '
                                u'ignored'.format(number, describe(line)))
            continue
        if section is None:
            if not in_bad_section:
                warnings.append(u'line {0}: a field before the first '
                                u'[section]; ignored'.format(number))
            key = _IGNORED
            continue
        name, subkey, value = field.groups()
        if subkey is not None:
            name = u'{0}[{1}]'.format(name, subkey)
            if name != CHECKSUM_KEYS[0]:
                key = _IGNORED  # a translation
                continue
        if name in section.fields:
            section.repeated.append(name)
            key = _IGNORED
            continue
        section.fields[name] = [value]
        key = name
    return sections


def _decimal(section, fields, key, warnings):
    value = fields.get(key)
    if value is None:
        return None
    if not _DECIMAL_RE.match(value) or len(value) > 19 or \
            int(value) > MAX_SIZE:
        warnings.append(u'{0}: its {1} {2} is not a number of bytes; taken '
                        u'as unknown'.format(section.shown(), key,
                                             describe(value)))
        return None
    return int(value)


def _entry(section, directory, warnings):
    """The section as an :class:`Entry`, or None (with a warning)."""
    skipped = u'skipped ' + section.shown()
    if section.repeated:
        warnings.append(u'{0}: it sets {1} more than once'.format(
            skipped, u', '.join(sorted(set(section.repeated)))))
        return None
    fields = collections.OrderedDict()
    for key, lines in section.fields.items():
        lines = [line.rstrip(_BLANKS) for line in lines]
        while len(lines) > 1 and not lines[-1]:
            lines.pop()
        if len(lines) > 1 and key in SINGLE_LINE_KEYS:
            warnings.append(u'{0}: its {1} goes on over several lines; only '
                            u'notes may'.format(skipped, key))
            return None
        fields[key] = u'\n'.join(lines) if key not in SINGLE_LINE_KEYS \
            else lines[0].strip(_BLANKS)
    if not fields.get('file'):
        warnings.append(u'{0}: it has no file'.format(skipped))
        return None
    try:
        url = resolve_under(directory, fields['file'])
    except UnsafePathError as err:
        warnings.append(u'{0}: its file {1} {2}; files must be beside the '
                        u'index'.format(skipped, describe(fields['file']),
                                        err))
        return None
    checksums = set(fields[key].lower() for key in CHECKSUM_KEYS
                    if fields.get(key))
    if len(checksums) > 1:
        warnings.append(u'{0}: its checksum and checksum[sha512] differ'
                        .format(skipped))
        return None
    sha512 = None
    if checksums:
        checksum = checksums.pop()
        sha512 = hex_digest(checksum, 128)
        if sha512 is None:
            warnings.append(u'{0}: its checksum {1} is not a SHA-512 (128 '
                            u'hex digits); ignored'.format(
                                section.shown(), describe(checksum)))
    image_format = (fields.get('format') or DEFAULT_FORMAT).lower()
    if image_format not in FORMATS:
        warnings.append(u'{0}: its format {1} is not {2}'.format(
            skipped, describe(fields['format']), u' or '.join(FORMATS)))
        return None
    revision = fields.get('revision') or u'1'
    if _DECIMAL_RE.match(revision) and len(revision) <= 19:
        revision = int(revision)
    hidden = (fields.get('hidden') or u'false').lower()
    if hidden not in (u'true', u'false'):
        warnings.append(u'{0}: its hidden {1} is neither true nor false; '
                        u'taken as false'.format(section.shown(),
                                                 describe(fields['hidden'])))
    return Entry(section.name, fields, url, sha512, image_format,
                 _decimal(section, fields, 'size', warnings),
                 _decimal(section, fields, 'compressed_size', warnings),
                 revision, hidden == u'true', line=section.line)


def parse_index(document, url):
    """
    The templates of the virt-builder index ``document`` (bytes or text,
    the content of a clearsigned index once verified) found at ``url``: a
    list of :class:`Entry` in index order, and a list of warnings.
    """
    where = u' at {0}'.format(url) if url else u''
    warnings = []
    text = _decode(document, warnings)
    if text is not None and text.lstrip().startswith(_CLEARSIGN_BEGIN):
        raise VirtBuilderError(
            u'the virt-builder index{0} is still wrapped in its OpenPGP '
            u'signature; check it with openpgp.verify_clearsigned and read '
            u'the text that returns'.format(where))
    if not looks_like_index(text):
        raise VirtBuilderError(
            u'the document{0} is not a virt-builder index (its first line '
            u'is not a [section] header); check the repository URL'
            .format(where))
    directory = directory_url(url)
    entries, seen = [], set()
    for section in _sections(text, warnings):
        entry = _entry(section, directory, warnings)
        if entry is None:
            continue
        identity = (entry.section, entry.architecture)
        if identity in seen:
            same = u'is for the same architecture ({0})'.format(
                entry.architecture) if entry.architecture else \
                u'has no architecture either'
            warnings.append(u'skipped {0}: an earlier [{1}] {2}'.format(
                section.shown(), entry.section, same))
            continue
        seen.add(identity)
        entries.append(entry)
    return entries, warnings
