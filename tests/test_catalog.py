# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""The catalog model: every dialect in docs/formats.md, "eustore catalogs",
with no network."""

from __future__ import absolute_import

import collections
import io
import json

import pytest

from eustore_plugin.catalogs.catalog import (Catalog, CatalogError,
                                             UnknownImageError,
                                             catalog_with_image,
                                             catalog_without_image,
                                             tarball_keys)
from tests.support.catalogs import fixture_path

STORE = 'http://store.example.com/eustore/catalog'


def load(name, url=STORE):
    with io.open(fixture_path(name), 'rb') as fixture:
        return Catalog.parse(fixture.read(), url)


def parse(images, url=STORE):
    return Catalog.parse(json.dumps({'images': images}), url)


def test_seed_catalog_fields_and_order():
    catalog = load('seed-catalog.json')
    assert [image.name for image in catalog.images] == [
        'centos-x86_64-20120114', 'debian-x86_64-20120114']
    centos = catalog.images[0]
    assert (centos.os, centos.architecture, centos.version) == (
        'centos', 'x86_64', '2012.1.14')
    assert centos.date == '20120114150503'
    assert centos.stamp == '28fc-4826'
    assert centos.recipe == 'centos-based'
    assert centos.contact == 'images@lists.eucalyptus.com'
    assert centos.hypervisors == ()
    assert centos.single_kernel is None
    assert centos.name_checksum is None
    assert catalog.warnings == []


def test_image_urls_resolve_against_the_store():
    catalog = load('seed-catalog.json')
    assert catalog.images[0].location == (
        'http://store.example.com/eustore/starter-emis/'
        'euca-centos-2012.1.14-x86_64.tgz')


def test_euca2ools2_dialect():
    catalog = load('euca2ools2-catalog.json')
    centos, debian, fedora = catalog.images
    assert centos.name_checksum == 1234567890
    assert centos.hypervisors == ('xen', 'kvm')
    assert centos.single_kernel is False
    # A checksum name written as a JSON number keeps its 10 digits.
    assert debian.name == '0987654321'
    assert debian.name_checksum == 987654321
    assert debian.single_kernel is True
    # Absolute URLs stay where they point.
    assert debian.location == 'http://mirror.example.com/debian.tgz'
    assert debian.extra == {'build-host': 'builder7'}
    # 3.0's virtualization type; a hypervisor list written as a string.
    assert fedora.is_hvm and not centos.is_hvm
    assert fedora.hypervisors == ('kvm',)


@pytest.mark.parametrize('word,expected', [
    ('True', True), ('true', True), ('yes', True), (True, True),
    ('False', False), ('FALSE', False), (False, False), ('', False),
    ('maybe', None)])
def test_single_kernel_spellings(word, expected):
    image = parse([{'name': 'x', 'single-kernel': word}]).images[0]
    assert image.single_kernel is expected


def test_size_and_digests_are_validated():
    good = {'name': 'a', 'size': '1024', 'sha256': 'AB' * 32, 'md5': 'c' * 32}
    bad = {'name': 'b', 'size': -1, 'sha256': 'xyz', 'md5': 'c' * 31}
    image_a, image_b = parse([good, bad]).images
    assert (image_a.size, image_a.sha256, image_a.md5) == (
        1024, 'ab' * 32, 'c' * 32)
    assert (image_b.size, image_b.sha256, image_b.md5) == (None, None, None)


def test_unknown_fields_are_kept_and_exported():
    image = parse([{'name': 'x', 'url': 'x.tgz', 'color': 'blue',
                    'tags': ['a']}]).images[0]
    data = image.to_dict()
    assert data['color'] == 'blue' and data['tags'] == ['a']
    assert data['location'] == 'http://store.example.com/eustore/x.tgz'
    assert data['name'] == 'x'


def test_entries_that_cannot_be_images_are_skipped_with_warnings():
    catalog = parse([{'name': 'good'}, 'junk', {'description': 'anonymous'},
                     {'name': '  '}, {'name': 'good'}])
    assert [image.name for image in catalog.images] == ['good', 'good']
    assert catalog.warnings == [
        'skipped catalog entry 2: not a JSON object',
        'skipped catalog entry 3: it has no name',
        'skipped catalog entry 4: it has no name',
        'catalog lists image "good" more than once; installs use the first']


@pytest.mark.parametrize('document,complaint', [
    (b'<html>Not found</html>', 'is not valid JSON'),
    (b'\xff\xfe\x00garbage', 'is not UTF-8'),
    (b'{"items": []}', 'has no "images" list'),
    (b'{"images": {"name": "x"}}', 'has no "images" list'),
    (b'[1, 2]', 'has no "images" list')])
def test_unusable_catalogs(document, complaint):
    with pytest.raises(CatalogError) as caught:
        Catalog.parse(document, STORE)
    assert complaint in str(caught.value)
    assert STORE in str(caught.value)


def test_utf8_bom_and_non_ascii_text():
    document = u'\ufeff{"images": [{"name": "d\u00e9bian"}]}'.encode('utf-8')
    assert Catalog.parse(document).images[0].name == u'd\u00e9bian'


def test_find_by_name_and_suggestions():
    catalog = load('seed-catalog.json')
    assert catalog.find('debian-x86_64-20120114') is catalog.images[1]
    with pytest.raises(UnknownImageError) as caught:
        catalog.find('centos-x86_64-2012011')
    assert caught.value.suggestions[0] == 'centos-x86_64-20120114'
    assert 'closest names: centos-x86_64-20120114' in str(caught.value)
    with pytest.raises(UnknownImageError) as caught:
        catalog.find('zzzzzzzz')
    assert 'eustore-describe-images' in str(caught.value)


def test_find_returns_the_first_of_duplicates():
    catalog = parse([{'name': 'x', 'version': '1'},
                     {'name': 'x', 'version': '2'}])
    assert catalog.find('x').version == '1'


def test_select_filters_combine():
    catalog = load('euca2ools2-catalog.json')
    names = lambda images: [image.name for image in images]  # noqa: E731
    assert names(catalog.select()) == names(catalog.images)
    assert names(catalog.select(oses=['CentOS'])) == ['1234567890']
    assert names(catalog.select(architectures=['x86_64'])) == [
        '0987654321', 'fedora-hvm']
    assert names(catalog.select(architectures=['x86_64'],
                                oses=['fedora', 'centos'])) == ['fedora-hvm']
    assert names(catalog.select(names=['fed*', '09*'])) == [
        '0987654321', 'fedora-hvm']
    assert catalog.select(names=['nothing*']) == []


# ------------------------------------------------------------------ editing

HAND_EDITED = (b'{"images": [{"name": "a", "zz-field": 1, "url": "a.tgz"}, '
               b'"not an entry", {"url": "b.tgz", "name": "b"}], '
               b'"operator": "ops@example.com"}')


def test_adding_an_image_keeps_everything_else_as_it_was():
    document, replaced = catalog_with_image(HAND_EDITED,
                                            {'name': 'c', 'url': 'c.tgz'})
    assert replaced is None
    data = json.loads(document.decode('utf-8'),
                      object_pairs_hook=collections.OrderedDict)
    assert data['operator'] == 'ops@example.com'
    assert data['images'][1] == 'not an entry'
    assert list(data['images'][2].keys()) == ['url', 'name']
    assert [image.name for image in Catalog.parse(document).images] == \
        ['a', 'b', 'c']


def test_replacing_an_image_keeps_its_place():
    document, replaced = catalog_with_image(
        HAND_EDITED,
        {'name': 'a', 'url': 'a2.tgz', 'description': u'\xe9t\xe9'})
    assert replaced['url'] == 'a.tgz'
    catalog = Catalog.parse(document)
    assert [image.url for image in catalog.images] == ['a2.tgz', 'b.tgz']
    assert catalog.images[0].description == u'\xe9t\xe9'
    assert tarball_keys(document) == set(["a2.tgz", "b.tgz"])


def test_a_new_store_starts_its_catalog():
    document, _ = catalog_with_image(None, {'name': 'x', 'url': 'x.tgz'})
    assert Catalog.parse(document).find('x').url == 'x.tgz'


def test_removing_an_image():
    document, removed = catalog_without_image(HAND_EDITED, 'b')
    assert removed['url'] == 'b.tgz'
    assert [image.name for image in Catalog.parse(document).images] == ['a']
    with pytest.raises(UnknownImageError) as caught:
        catalog_without_image(document, 'bb')
    assert 'no image named "bb"' in str(caught.value)


def test_a_broken_catalog_is_not_edited():
    with pytest.raises(CatalogError) as caught:
        catalog_with_image(b'{"images": ', {'name': 'x'})
    assert 'repair it by hand' in str(caught.value)
    with pytest.raises(CatalogError):
        catalog_without_image(b'[]', 'x')
