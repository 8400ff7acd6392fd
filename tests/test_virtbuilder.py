# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
virt-builder indexes, no network.  The index is shaped like libguestfs's
own (builder.libguestfs.org's index, built from the index-fragments in its
source tree): notes on continuation lines, translations, one section per
architecture.
"""

from __future__ import absolute_import

import pytest
import six

from eustore_plugin.catalogs import simplestreams
from eustore_plugin.catalogs.virtbuilder import (VirtBuilderError,
                                                 looks_like_index, parse_index)

REPO = 'https://builder.libguestfs.org/'
INDEX_URL = REPO + 'index.asc'
SHA_CIRROS = '8e' * 64
SHA_DEBIAN = 'C9' * 64
SHA_FEDORA = '57' * 64
SHA_FEDORA_ARM = 'ab' * 64

INDEX = u'''\
# The test repository's index.
[cirros-0.3.5]
name=CirrOS 0.3.5
osinfo=cirros0.3.5
arch=x86_64
file=cirros-0.3.5.xz
revision=1
checksum[sha512]={cirros}
format=qcow2
size=41126400
compressed_size=11419004
expand=/dev/sda1
notes=CirrOS is a minimal Linux distribution.
notes[fr]=CirrOS est une distribution Linux minimale.
 Elle tient en quelques m\u00e9gaoctets.

[debian-7]
name=Debian 7 (Wheezy)
osinfo=debian7
arch=x86_64
file=debian-7.xz
revision=2
checksum={debian}
format=raw
size=4294967296
compressed_size=150734028
expand=/dev/sda1
aliases=debian-wheezy  wheezy
notes=Debian 7 (Wheezy).
 \n\
 This is a default Debian install.
 \n\
 virt-builder debian-7 \\
     --edit '/etc/inittab: s,^#([1-9].*respawn.*/sbin/getty.*),$1,'

[fedora-21]
name=Fedora\u00ae 21 Server
osinfo=fedora21
arch=x86_64
file=fedora-21.xz
checksum[sha512]={fedora}
size=6442450944
expand=/dev/sda3

[fedora-21]
name=Fedora\u00ae 21 Server (aarch64)
osinfo=fedora21
arch=aarch64
file=fedora-21-aarch64.xz
checksum[sha512]={fedora_arm}
format=raw
size=6442450944
compressed_size=186616612
expand=/dev/sda4
hidden=true
'''.format(cirros=SHA_CIRROS, debian=SHA_DEBIAN, fedora=SHA_FEDORA,
           fedora_arm=SHA_FEDORA_ARM)

DEBIAN_NOTES = (u'Debian 7 (Wheezy).\n\nThis is a default Debian install.\n\n'
                u'virt-builder debian-7 \\\n'
                u"    --edit '/etc/inittab: s,^#([1-9].*respawn.*/sbin/"
                u"getty.*),$1,'")


def parse(text, url=INDEX_URL):
    return parse_index(text, url)


def one_entry(text, url=INDEX_URL):
    entries, warnings = parse(text, url)
    assert len(entries) == 1, (entries, warnings)
    return entries[0], warnings


def section(*lines, **kwargs):
    """A [test] section holding ``lines``, and a file unless one of them
    is, or ``file`` is False."""
    head = [u'[{0}]'.format(kwargs.get('name', 'test'))]
    if kwargs.get('file', True) and \
            not any(line.startswith('file=') for line in lines):
        head.append(u'file=test.xz')
    return u'\n'.join(head + list(lines)) + u'\n'


def test_a_libguestfs_index():
    entries, warnings = parse(INDEX.encode('utf-8'))
    assert warnings == []
    assert [(e.section, e.arch) for e in entries] == [
        ('cirros-0.3.5', 'x86_64'), ('debian-7', 'x86_64'),
        ('fedora-21', 'x86_64'), ('fedora-21', 'aarch64')]
    cirros, debian, fedora, fedora_arm = entries
    assert cirros.name == 'CirrOS 0.3.5'
    assert cirros.osinfo == 'cirros0.3.5'
    assert cirros.file == 'cirros-0.3.5.xz'
    assert cirros.url == REPO + 'cirros-0.3.5.xz'
    assert cirros.sha512 == SHA_CIRROS
    assert cirros.format == 'qcow2'
    assert (cirros.size, cirros.compressed_size) == (41126400, 11419004)
    assert cirros.revision == 1
    assert cirros.expand == '/dev/sda1'
    # The French notes are a translation, ignored with their continuation.
    assert cirros.notes == 'CirrOS is a minimal Linux distribution.'
    assert cirros.compression == 'xz'
    assert cirros.hidden is False and cirros.aliases == ()
    assert 'notes[fr]' not in cirros.fields
    # Plain checksum= is a SHA-512 too; digests come out lowercase.
    assert debian.sha512 == SHA_DEBIAN.lower()
    assert debian.revision == 2
    assert debian.aliases == ('debian-wheezy', 'wheezy')
    assert debian.notes == DEBIAN_NOTES
    assert fedora.name == u'Fedora\u00ae 21 Server'
    assert fedora.format == 'raw'  # the default
    assert fedora.compressed_size is None
    assert fedora.revision == 1  # the default
    assert fedora_arm.hidden is True
    assert (fedora.architecture, fedora_arm.architecture) == (
        'x86_64', 'arm64')
    headers = [number for number, line in enumerate(INDEX.split(u'\n'), 1)
               if line == u'[fedora-21]']
    assert (fedora.line, fedora_arm.line) == tuple(headers)


def test_the_text_gpgv_hands_out_reads_the_same():
    # OpenPGP signs text with the spaces at the ends of its lines removed,
    # and gpgv writes it out that way: the " " lines of notes come out
    # empty, and must not end the notes.
    verified = u'\n'.join(line.rstrip(u' \t') for line in INDEX.split(u'\n'))
    assert verified != INDEX
    as_written, _ = parse(INDEX)
    as_verified, warnings = parse(verified)
    assert warnings == []
    assert [(e.section, e.arch, e.notes, e.fields) for e in as_verified] == \
        [(e.section, e.arch, e.notes, e.fields) for e in as_written]


def test_crlf_bom_and_trailing_spaces():
    text = u'\ufeff' + section(u'name=Test  ', u'size=10 \t', u'notes=a  ',
                               u'  b  ', u'format=QCOW2 ')
    entry, warnings = one_entry(text.replace(u'\n', u'\r\n').encode('utf-8'))
    assert warnings == []
    assert (entry.name, entry.size, entry.notes, entry.format) == (
        'Test', 10, 'a\n b', 'qcow2')


def test_a_line_of_one_space_is_an_empty_line_of_the_notes():
    entry, _ = one_entry(section(u'notes=first', u' ', u' second', u'',
                                 u'', u'size=1'))
    assert entry.notes == 'first\n\nsecond'
    assert entry.size == 1


def test_comments_are_not_part_of_values():
    entry, warnings = one_entry(section(u'notes=a', u'# a comment', u' b',
                                        u'#size=5', u'size=6'))
    assert warnings == []
    assert (entry.notes, entry.size) == ('a\nb', 6)


def test_urls_are_relative_to_the_index():
    entry, _ = one_entry(section(u'file=images/debian-12.qcow2.xz'),
                         url='https://example.com/vb/index.asc?sig=1#x')
    assert entry.url == 'https://example.com/vb/images/debian-12.qcow2.xz'
    entry, _ = one_entry(section(u'file=./disk.img'),
                         url='http://example.com/index')
    assert entry.url == 'http://example.com/disk.img'
    assert entry.compression is None


def test_without_a_url_files_stay_relative():
    entry, _ = one_entry(section(u'file=a/b.xz'), url=None)
    assert entry.url == 'a/b.xz'


@pytest.mark.parametrize('arch, ec2', [
    ('x86_64', 'x86_64'), ('aarch64', 'arm64'), ('i686', 'i386'),
    ('armv7l', 'armv7l'), ('ppc64le', 'ppc64le'), ('S390X', 's390x')])
def test_architectures_are_named_as_simplestreams_names_them(arch, ec2):
    entry, _ = one_entry(section(u'arch=' + arch))
    assert entry.arch == arch
    assert entry.architecture == ec2 == simplestreams.ec2_architecture(arch)


def test_entries_without_arch():
    entry, _ = one_entry(section())
    assert entry.arch is None and entry.architecture is None


@pytest.mark.parametrize('text, expected', [
    (INDEX, True),
    (u'\n\n# comment\n#\n[debian-12]\nfile=x\n', True),
    (u'[debian-12]  \r\n', True),
    (u'\ufeff[x]\n', True),
    (INDEX.encode('utf-8'), True),
    (u'[Unit]\nDescription=a systemd unit\n', True),
    (u'', False),
    (u'# only a comment\n', False),
    (u'name=x\n[debian-12]\n', False),
    (u'{"format": "index:1.0"}', False),
    (u'[1, 2]\n', False),
    (u'[{"name": "x"}]', False),
    (u'[]\n', False),
    (u'[bad name]\n', False),
    (u'<html><body>404</body></html>', False),
    (u'-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n[x]\n', False),
    (b'\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F', False),
    (None, False),
    (42, False),
])
def test_looks_like_index(text, expected):
    assert looks_like_index(text) is expected


@pytest.mark.parametrize('document, complaint', [
    (u'', 'is not a virt-builder index'),
    (b'{"format": "index:1.0", "index": {}}', 'is not a virt-builder index'),
    (b'<html>Not Found</html>', 'is not a virt-builder index'),
    (u'-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n' + INDEX,
     'still wrapped in its OpenPGP signature'),
    (None, 'is not a virt-builder index'),
])
def test_documents_that_are_not_indexes(document, complaint):
    with pytest.raises(VirtBuilderError) as caught:
        parse(document)
    assert complaint in str(caught.value)
    assert INDEX_URL in str(caught.value)
    assert '\n' not in str(caught.value)
    assert isinstance(caught.value, ValueError)


# ------------------------------------------------------------ hostile input

@pytest.mark.parametrize('lines, complaint', [
    ([u'name=no file here'], 'it has no file'),
    ([u'file='], 'it has no file'),
    ([u'file=   '], 'it has no file'),
    ([u'file=/etc/passwd'], 'its file "/etc/passwd" is absolute'),
    ([u'file=//evil.example.com/x.xz'], 'is absolute'),
    ([u'file=https://evil.example.com/x.xz'], 'names a URL scheme'),
    ([u'file=file:///etc/shadow'], 'names a URL scheme'),
    ([u'file=../../x.xz'], 'climbs out with ".."'),
    ([u'file=images/%2e%2e/%2E%2E/x.xz'], 'climbs out with ".."'),
    ([u'file=images\\..\\x.xz'], 'backslash'),
    ([u'file=a.xz\x1b'], 'control characters'),
    ([u'file=a.xz', u' b.xz'], 'its file goes on over several lines'),
    ([u'checksum=' + u'a' * 64, u'  more'],
     'its checksum goes on over several lines'),
    ([u'size=1', u'size=2'], 'it sets size more than once'),
    ([u'file=a.xz', u'file=b.xz'], 'it sets file more than once'),
    ([u'file=x.xz', u'checksum=' + u'a' * 128,
      u'checksum[sha512]=' + u'b' * 128],
     'its checksum and checksum[sha512] differ'),
    ([u'file=x.vmdk', u'format=vmdk'], 'its format "vmdk" is not raw or '
     'qcow2'),
])
def test_unusable_sections_are_skipped_with_a_warning(lines, complaint):
    text = INDEX + u'\n' + section(*lines, name='bad', file=False) + \
        section(u'arch=x86_64', name='after')
    entries, warnings = parse(text)
    assert [e.section for e in entries] == [
        'cirros-0.3.5', 'debian-7', 'fedora-21', 'fedora-21', 'after']
    assert len(warnings) == 1, warnings
    bad_line = text.split(u'\n').index(u'[bad]') + 1
    assert warnings[0].startswith(
        u'skipped [bad] (line {0}): '.format(bad_line))
    assert complaint in warnings[0]


def test_same_checksum_in_both_keys_is_fine():
    entry, warnings = one_entry(section(u'checksum=' + u'A' * 128,
                                        u'checksum[sha512]=' + u'a' * 128))
    assert warnings == [] and entry.sha512 == 'a' * 128


@pytest.mark.parametrize('lines, attribute, value, complaint', [
    ([u'size=abc'], 'size', None, 'its size "abc" is not a number of bytes'),
    ([u'size=-1'], 'size', None, 'is not a number of bytes'),
    ([u'size=1e9'], 'size', None, 'is not a number of bytes'),
    ([u'size=' + u'9' * 19], 'size', None, 'is not a number of bytes'),
    ([u'size=' + u'1' * 5000], 'size', None, 'is not a number of bytes'),
    ([u'size=\u0661\u0662'], 'size', None, 'is not a number of bytes'),
    ([u'size=9223372036854775807'], 'size', 2 ** 63 - 1, None),
    ([u'compressed_size=x'], 'compressed_size', None,
     'its compressed_size "x" is not a number of bytes'),
    ([u'checksum=abc'], 'sha512', None,
     'its checksum "abc" is not a SHA-512 (128 hex digits); ignored'),
    ([u'checksum[sha512]=' + u'z' * 128], 'sha512', None, 'not a SHA-512'),
    ([u'checksum=' + u'a' * 64], 'sha512', None, 'not a SHA-512'),
    ([], 'sha512', None, None),
    ([u'hidden=TRUE'], 'hidden', True, None),
    ([u'hidden=false'], 'hidden', False, None),
    ([u'hidden=yes please'], 'hidden', False,
     'its hidden "yes please" is neither true nor false'),
    ([u'revision=7'], 'revision', 7, None),
    ([u'revision=1.2a'], 'revision', u'1.2a', None),
    ([u'revision=' + u'9' * 30], 'revision', u'9' * 30, None),
    ([u'format=Raw'], 'format', 'raw', None),
    ([u'aliases='], 'aliases', (), None),
    ([u'aliases= a\tb  c '], 'aliases', ('a', 'b', 'c'), None),
    ([u'notes='], 'notes', u'', None),
    ([u'signature-uri=/elsewhere.sig', u'sig=http://x/y'], 'name', None,
     None),
])
def test_field_values(lines, attribute, value, complaint):
    entry, warnings = one_entry(section(*lines))
    assert getattr(entry, attribute) == value
    if complaint is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0].startswith(u'[test] (line 1): ')
        assert complaint in warnings[0]


def test_each_os_version_once_per_architecture():
    text = (section(u'arch=x86_64', u'name=first', name='a') +
            section(u'arch=aarch64', name='a') +
            section(u'arch=arm64', name='a') +
            section(u'arch=x86_64', u'name=second', name='a') +
            section(name='b') + section(name='b'))
    entries, warnings = parse(text)
    assert [(e.section, e.arch, e.name) for e in entries] == [
        ('a', 'x86_64', 'first'), ('a', 'aarch64', None), ('b', None, None)]
    assert warnings == [
        u'skipped [a] (line 8): an earlier [a] is for the same architecture '
        u'(arm64)',
        u'skipped [a] (line 11): an earlier [a] is for the same '
        u'architecture (x86_64)',
        u'skipped [b] (line 17): an earlier [b] has no architecture either']


@pytest.mark.parametrize('header', [u'[bad name]', u'[unterminated',
                                    u'[a]b]', u'[]', u'[x/../y]',
                                    u'[\u00e9]', u'[a] trailing'])
def test_a_bad_header_does_not_lend_its_fields_to_the_section_above(header):
    # Were the bad header ignored alone, its file= would become a second
    # file of the section above it, or replace it.
    text = section(u'arch=x86_64', name='good') + header + u'\n' + \
        u'file=evil.xz\nchecksum=' + u'0' * 128 + u'\n notes\n'
    entry, warnings = one_entry(text)
    assert (entry.section, entry.file, entry.sha512) == (
        'good', 'test.xz', None)
    assert len(warnings) == 1
    assert warnings[0].startswith(u'line 4: ')
    assert 'is not a section header' in warnings[0]


@pytest.mark.parametrize('line, complaint', [
    (u'this is not a field', 'is not a key=value field'),
    (u'=value', 'is not a key=value field'),
    (u'key with space=1', 'is not a key=value field'),
    (u'-----BEGIN PGP SIGNATURE-----', 'is not a key=value field'),
    (u'\x00\x01', 'is not a key=value field'),
])
def test_lines_that_mean_nothing_are_ignored_with_a_warning(line,
                                                            complaint):
    entry, warnings = one_entry(section(u'size=1', line, u'name=x'))
    assert (entry.size, entry.name) == (1, 'x')
    assert len(warnings) == 1
    assert warnings[0].startswith(u'line 4: ')
    assert complaint in warnings[0]


def test_a_continuation_with_nothing_above_it():
    entry, warnings = one_entry(u'[test]\n orphan\nfile=x.xz\n')
    assert entry.file == 'x.xz'
    assert warnings == [u'line 2: a continuation line with no field above '
                        u'it; ignored']


def test_unknown_fields_are_kept_and_may_continue():
    entry, warnings = one_entry(section(u'lvexpand=/dev/vg/root',
                                        u'x-vendor=a', u' b'))
    assert warnings == []
    assert entry.fields['lvexpand'] == '/dev/vg/root'
    assert entry.fields['x-vendor'] == 'a\nb'


def test_text_that_is_not_utf8():
    document = section(u'name=caf\u00e9', u'notes=\u00e9t\u00e9').encode(
        'utf-8').replace(u'\u00e9t\u00e9'.encode('utf-8'), b'\xe9t\xe9')
    entry, warnings = one_entry(document)
    assert entry.name == u'caf\u00e9'
    assert entry.notes == u'\ufffdt\ufffd'
    assert warnings == [u'the index is not valid UTF-8; the bytes that are '
                        u'not are shown as U+FFFD']


def test_strange_text_is_kept_as_it_is():
    name = u'lone \ud800 \x1b[31m \u202e \U0001f600 \x0c \u2028'
    entry, warnings = one_entry(section(u'name=' + name, u'notes=' + name,
                                        u' ' + name))
    assert warnings == []
    assert entry.name == name
    assert entry.notes == name + u'\n' + name
    repr(entry)


def test_warnings_about_strange_text_do_not_raise():
    entries, warnings = parse(section(u'file=/\ud800', u'size=\ud800',
                                      name='a') + u'\ud800 \x00\n')
    assert entries == []
    assert len(warnings) == 2
    assert all(isinstance(warning, six.text_type) for warning in warnings)


def test_long_values_are_cut_in_warnings():
    _, warnings = parse(section(u'file=/' + u'x' * 100000))
    assert len(warnings) == 1 and len(warnings[0]) < 200


def test_a_large_index():
    text = u''.join(section(u'arch=x86_64', u'size={0}'.format(n),
                            u'notes=a', *([u' line'] * 20),
                            name='os-{0}'.format(n)) for n in range(5000))
    entries, warnings = parse(text)
    assert warnings == []
    assert len(entries) == 5000
    assert entries[-1].size == 4999
    assert entries[-1].notes.count(u'\n') == 20
