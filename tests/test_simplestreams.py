# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Simplestreams indexes and products files, no network.  The documents are
shaped like the real ones: Ubuntu's cloud-images streams/v1/index.json and
com.ubuntu.cloud:released:download.json, and CirrOS's released downloads.
"""

from __future__ import absolute_import

import copy
import json

import pytest
import six

try:
    import tracemalloc
except ImportError:  # Python 2.7
    tracemalloc = None

from eustore_plugin.catalogs import simplestreams
from eustore_plugin.catalogs.simplestreams import (PRODUCTS_FORMAT,
                                                   ProductsRef,
                                                   SimplestreamsError,
                                                   document_kind,
                                                   ec2_architecture,
                                                   mirror_root,
                                                   newest_versions,
                                                   parse_index, parse_products,
                                                   version_key)
from tests.support.hostile import products_bomb

UBUNTU = 'https://cloud-images.ubuntu.com/releases/'
UBUNTU_INDEX = UBUNTU + 'streams/v1/index.json'
UBUNTU_PRODUCTS = UBUNTU + 'streams/v1/com.ubuntu.cloud:released:download.json'
CIRROS = 'https://download.cirros-cloud.net/'


def digest(char, length):
    return char * length


INDEX = {
    'format': 'index:1.0',
    'updated': 'Fri, 23 Feb 2024 14:21:47 +0000',
    'index': {
        'com.ubuntu.cloud:released:aws': {
            'cloudname': 'aws', 'datatype': 'image-ids',
            'format': 'products:1.0',
            'path': 'streams/v1/com.ubuntu.cloud:released:aws.json',
            'products': ['com.ubuntu.cloud:server:22.04:amd64'],
            'updated': 'Fri, 23 Feb 2024 14:21:47 +0000',
        },
        'com.ubuntu.cloud:released:download': {
            'datatype': 'image-downloads', 'format': 'products:1.0',
            'path': 'streams/v1/com.ubuntu.cloud:released:download.json',
            'products': ['com.ubuntu.cloud:server:22.04:amd64',
                         'com.ubuntu.cloud:server:22.04:arm64'],
            'updated': 'Fri, 23 Feb 2024 14:21:47 +0000',
        },
    },
}

PRODUCTS = {
    'content_id': 'com.ubuntu.cloud:released:download',
    'creator': 'climdb-download-streams-export',
    'datatype': 'image-downloads',
    'format': 'products:1.0',
    'license': 'https://ubuntu.com/legal/intellectual-property-policy',
    'updated': 'Fri, 23 Feb 2024 14:21:47 +0000',
    'products': {
        'com.ubuntu.cloud:server:22.04:amd64': {
            'aliases': '22.04,default,lts,j,jammy',
            'arch': 'amd64', 'os': 'ubuntu', 'release': 'jammy',
            'release_codename': 'Jammy Jellyfish',
            'release_title': '22.04 LTS', 'support_eol': '2027-04-21',
            'supported': True, 'version': '22.04',
            'versions': {
                '20240207': {
                    'label': 'release',
                    'pubname': 'ubuntu-jammy-22.04-amd64-server-20240207',
                    'items': {
                        'disk1.img': {
                            'ftype': 'disk1.img',
                            'md5': digest('A', 32),
                            'path': 'server/releases/jammy/release-20240207/'
                                    'ubuntu-22.04-server-cloudimg-amd64.img',
                            'sha256': digest('B', 64),
                            'size': 675086336,
                        },
                        'manifest': {
                            'ftype': 'manifest',
                            'path': 'server/releases/jammy/release-20240207/'
                                    'ubuntu-22.04-server-cloudimg-amd64'
                                    '.manifest',
                            'sha256': digest('c', 64), 'size': 17781,
                        },
                    },
                },
                '20240223': {
                    'label': 'release',
                    'pubname': 'ubuntu-jammy-22.04-amd64-server-20240223',
                    'items': {
                        'disk1.img': {
                            'ftype': 'disk1.img',
                            'md5': digest('d', 32),
                            'path': 'server/releases/jammy/release-20240223/'
                                    'ubuntu-22.04-server-cloudimg-amd64.img',
                            'sha256': digest('e', 64),
                            'size': 676134912,
                        },
                    },
                },
            },
        },
        'com.ubuntu.cloud:server:22.04:arm64': {
            'arch': 'arm64', 'os': 'ubuntu', 'release': 'jammy',
            'release_title': '22.04 LTS', 'version': '22.04',
            'versions': {
                '20240207': {
                    'label': 'release',
                    'pubname': 'ubuntu-jammy-22.04-arm64-server-20240207',
                    'items': {
                        'disk1.img': {
                            'ftype': 'disk1.img',
                            'path': 'server/releases/jammy/release-20240207/'
                                    'ubuntu-22.04-server-cloudimg-arm64.img',
                            'sha256': digest('f', 64), 'size': 649854976,
                        },
                    },
                },
            },
        },
    },
}

# CirrOS sets the version of the software on each build, and has no
# md5-less items; its mirror is the directory streams/ is in too.
CIRROS_PRODUCTS = {
    'datatype': 'image-downloads',
    'format': 'products:1.0',
    'content_id': 'net.cirros-cloud:released:download',
    'updated': 'Fri, 22 Mar 2013 02:49:31 +0000',
    'products': {
        'net.cirros-cloud:standard:0.3:x86_64': {
            'arch': 'x86_64', 'stream': 'released',
            'versions': {
                '20111020': {
                    'version': '0.3.0', 'pubname': 'cirros-0.3.0-x86_64',
                    'items': {'disk.img': {
                        'ftype': 'disk.img',
                        'path': '0.3.0/cirros-0.3.0-x86_64-disk.img',
                        'sha256': digest('1', 64), 'md5': digest('2', 32),
                        'size': 9761280}},
                },
                '20130207': {
                    'version': '0.3.1', 'pubname': 'cirros-0.3.1-x86_64',
                    'items': {'disk.img': {
                        'ftype': 'disk.img',
                        'path': '0.3.1/cirros-0.3.1-x86_64-disk.img',
                        'sha256': digest('3', 64), 'md5': digest('4', 32),
                        'size': 13147648}},
                },
            },
        },
    },
}


def products_with_item(item, where='items'):
    """A one-product, one-version products file holding ``item`` (and a
    good item beside it, so the version itself stays)."""
    return {'format': PRODUCTS_FORMAT, 'products': {'p': {'versions': {
        '1': {'items': {'bad': item, 'good': {'path': 'good.img'}}}}}}}


def only_version(document, url=UBUNTU_PRODUCTS, mirror=UBUNTU):
    versions, warnings = parse_products(document, url, mirror)
    assert len(versions) == 1, (versions, warnings)
    return versions[0], warnings


def deep(levels=100000, container=list):
    """A value nested ``levels`` deep, built without recursion."""
    value = container()
    for _ in range(levels):
        value = [value] if container is list else {'x': value}
    return value


# ------------------------------------------------------------------- index

def test_index_names_the_download_products_files_under_the_mirror():
    refs, warnings = parse_index(INDEX, UBUNTU_INDEX)
    assert warnings == []  # the image-ids stream is skipped silently
    assert refs == [ProductsRef(
        url=UBUNTU_PRODUCTS,
        content_id='com.ubuntu.cloud:released:download',
        datatype='image-downloads', format='products:1.0',
        path='streams/v1/com.ubuntu.cloud:released:download.json',
        mirror_url=UBUNTU,
        products=('com.ubuntu.cloud:server:22.04:amd64',
                  'com.ubuntu.cloud:server:22.04:arm64'))]


@pytest.mark.parametrize('form', ['parsed', 'text', 'bytes', 'bom'])
def test_index_is_read_parsed_or_as_json(form):
    document = {
        'parsed': INDEX, 'text': six.text_type(json.dumps(INDEX)),
        'bytes': json.dumps(INDEX).encode('utf-8'),
        'bom': b'\xef\xbb\xbf' + json.dumps(INDEX).encode('utf-8'),
    }[form]
    refs, _ = parse_index(document, UBUNTU_INDEX)
    assert [ref.url for ref in refs] == [UBUNTU_PRODUCTS]


@pytest.mark.parametrize('url, mirror', [
    (UBUNTU_INDEX, UBUNTU),
    ('http://mirror.example.com/streams/v1/index.json',
     'http://mirror.example.com/'),
    # A host named "streams" is not the streams/ directory.
    ('http://streams/ubuntu/streams/v1/index.json', 'http://streams/ubuntu/'),
    ('http://streams/v1/index.json', 'http://streams/v1/'),
    # Not in a streams/ directory: the document's own directory.
    ('http://example.com/images/index.json', 'http://example.com/images/'),
    ('https://example.com/a/streams/v1/index.json?token=x#top',
     'https://example.com/a/'),
])
def test_mirror_root(url, mirror):
    assert mirror_root(url) == mirror


def test_an_explicit_mirror_url_gets_its_final_slash():
    refs, _ = parse_index(INDEX, UBUNTU_INDEX,
                          mirror_url='https://mirror.example.com/ubuntu')
    assert refs[0].mirror_url == 'https://mirror.example.com/ubuntu/'
    assert refs[0].url == ('https://mirror.example.com/ubuntu/streams/v1/'
                           'com.ubuntu.cloud:released:download.json')


def test_without_a_url_paths_stay_relative():
    refs, _ = parse_index(INDEX, None)
    assert refs[0].url == 'streams/v1/com.ubuntu.cloud:released:download.json'
    versions, _ = parse_products(PRODUCTS, None)
    assert versions[0].items['disk1.img'].url.startswith('server/releases/')


def index_with(entry):
    document = copy.deepcopy(INDEX)
    document['index']['bad'] = entry
    return document


def download_entry(**fields):
    entry = {'datatype': 'image-downloads', 'format': 'products:1.0',
             'path': 'streams/v1/x.json'}
    entry.update(fields)
    return entry


@pytest.mark.parametrize('entry, complaint', [
    ('a string', 'not a JSON object'),
    (['a', 'list'], 'not a JSON object'),
    (download_entry(format='products:2.0'), 'its format is "products:2.0"'),
    (download_entry(path=None), 'is missing'),
    (download_entry(path=''), 'is empty'),
    (download_entry(path=7), 'is the number 7, not text'),
    (download_entry(path='/streams/v1/x.json'), 'is absolute'),
    (download_entry(path='//evil.example.com/x.json'), 'is absolute'),
    (download_entry(path='https://evil.example.com/x.json'),
     'names a URL scheme'),
    (download_entry(path='file:///etc/passwd'), 'names a URL scheme'),
    (download_entry(path='streams/../../x.json'), 'climbs out with ".."'),
    (download_entry(path='streams/%2e%2E/%2E./x.json'),
     'climbs out with ".."'),
    (download_entry(path='..'), 'climbs out with ".."'),
    (download_entry(path='streams\\..\\..\\x.json'), 'backslash'),
    (download_entry(path='streams/v1/x\n.json'), 'control characters'),
])
def test_unusable_index_entries_are_skipped_with_a_warning(entry, complaint):
    refs, warnings = parse_index(index_with(entry), UBUNTU_INDEX)
    assert [ref.content_id for ref in refs] == [
        'com.ubuntu.cloud:released:download']
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith('skipped index entry "bad": ')
    assert complaint in warnings[0]


def test_index_entries_without_products_list_are_still_read():
    refs, warnings = parse_index(index_with(download_entry(
        products={'not': 'a list'})), UBUNTU_INDEX)
    assert warnings == []
    assert [ref.products for ref in refs if ref.content_id == 'bad'] == [()]


@pytest.mark.parametrize('document, complaint', [
    (PRODUCTS, 'is a products file, not an index'),
    ({'index': {}}, 'is not a simplestreams index'),
    ([INDEX], 'is not a simplestreams index'),
    ({'format': 'index:1.0', 'index': []}, 'has no "index" object'),
    (b'<html>Not Found</html>', 'is not valid JSON'),
    (b'\xff\xfe{}', 'is not UTF-8'),
    ('[' * 100000 + ']' * 100000, 'nests too deeply'),
    (deep(), 'is not a simplestreams index'),
    (None, 'is not a simplestreams index'),
])
def test_documents_that_are_not_indexes(document, complaint):
    with pytest.raises(SimplestreamsError) as caught:
        parse_index(document, UBUNTU_INDEX)
    message = str(caught.value)
    assert complaint in message
    assert UBUNTU_INDEX in message
    assert '\n' not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize('data, kind', [
    (INDEX, 'index'), (PRODUCTS, 'products'), (CIRROS_PRODUCTS, 'products'),
    ({'format': 'index:2.0', 'index': {}}, None), ({'products': {}}, None),
    ([], None), (None, None), ('index:1.0', None),
    ({'format': deep()}, None), ({'format': ['index:1.0']}, None),
])
def test_document_kind(data, kind):
    assert document_kind(data) == kind


# ---------------------------------------------------------------- products

def test_ubuntu_products_file():
    versions, warnings = parse_products(PRODUCTS, UBUNTU_PRODUCTS, UBUNTU)
    assert warnings == []
    assert [(v.product, v.version) for v in versions] == [
        ('com.ubuntu.cloud:server:22.04:amd64', '20240207'),
        ('com.ubuntu.cloud:server:22.04:amd64', '20240223'),
        ('com.ubuntu.cloud:server:22.04:arm64', '20240207')]
    amd64 = versions[0]
    assert amd64.pubname == 'ubuntu-jammy-22.04-amd64-server-20240207'
    assert amd64.architecture == 'x86_64'
    assert versions[2].architecture == 'arm64'
    # The document's, the product's and the version's attributes, merged;
    # the tree's own levels and the document's format are not attributes.
    assert amd64.attributes == {
        'content_id': 'com.ubuntu.cloud:released:download',
        'creator': 'climdb-download-streams-export',
        'datatype': 'image-downloads',
        'license': 'https://ubuntu.com/legal/intellectual-property-policy',
        'updated': 'Fri, 23 Feb 2024 14:21:47 +0000',
        'aliases': '22.04,default,lts,j,jammy', 'arch': 'amd64',
        'os': 'ubuntu', 'release': 'jammy',
        'release_codename': 'Jammy Jellyfish', 'release_title': '22.04 LTS',
        'support_eol': '2027-04-21', 'supported': True, 'version': '22.04',
        'label': 'release',
        'pubname': 'ubuntu-jammy-22.04-amd64-server-20240207'}
    assert list(amd64.items) == ['disk1.img', 'manifest']
    disk = amd64.items['disk1.img']
    assert disk.name == 'disk1.img' and disk.ftype == 'disk1.img'
    # Relative to the mirror, not to streams/v1/ where the file is.
    assert disk.url == (UBUNTU + 'server/releases/jammy/release-20240207/'
                        'ubuntu-22.04-server-cloudimg-amd64.img')
    assert disk.path.startswith('server/releases/')
    assert disk.size == 675086336
    assert (disk.sha256, disk.md5) == ('b' * 64, 'a' * 32)
    assert amd64.items['manifest'].md5 is None
    assert disk.attributes['pubname'] == amd64.pubname
    assert 'path' not in disk.attributes and 'sha256' not in disk.attributes


def test_the_mirror_defaults_to_the_root_of_the_products_files_url():
    versions, _ = parse_products(PRODUCTS, UBUNTU_PRODUCTS)
    assert versions[0].items['disk1.img'].url.startswith(
        UBUNTU + 'server/releases/')


def test_cirros_versions_carry_their_own_version_attribute():
    versions, warnings = parse_products(
        json.dumps(CIRROS_PRODUCTS).encode('utf-8'),
        CIRROS + 'streams/v1/net.cirros-cloud:released:download.json')
    assert warnings == []
    assert [(v.version, v.attributes['version'], v.pubname)
            for v in versions] == [
        ('20111020', '0.3.0', 'cirros-0.3.0-x86_64'),
        ('20130207', '0.3.1', 'cirros-0.3.1-x86_64')]
    assert versions[1].items['disk.img'].url == (
        CIRROS + '0.3.1/cirros-0.3.1-x86_64-disk.img')
    assert [v.version for v in newest_versions(versions)] == ['20130207']


@pytest.mark.parametrize('levels, arch', [
    ({}, 'top'),
    ({'product': 'product'}, 'product'),
    ({'version': 'version'}, 'version'),
    ({'product': 'product', 'version': 'version'}, 'version'),
])
def test_lower_levels_override_higher_ones(levels, arch):
    item = {'path': 'x.img', 'arch': 'item'}
    version = {'items': {'x': item}}
    product = {'versions': {'1': version}}
    document = {'format': PRODUCTS_FORMAT, 'arch': 'top',
                'products': {'p': product}}
    if 'product' in levels:
        product['arch'] = levels['product']
    if 'version' in levels:
        version['arch'] = levels['version']
    result, _ = only_version(document)
    assert result.attributes['arch'] == arch
    # The item's own value wins for the item, and only for it.
    assert result.items['x'].attributes['arch'] == 'item'


def test_containers_are_not_attributes():
    document = {'format': PRODUCTS_FORMAT, 'tags': ['a', 'b'],
                'extra': {'nested': True}, 'products': {'p': {
                    'aliases': ['not', 'scalar'], 'versions': {'1': {
                        'items': {'x': {'path': 'x', 'sub': {}}}}}}}}
    version, warnings = only_version(document)
    assert warnings == []
    assert set(version.attributes) == set()
    assert set(version.items['x'].attributes) == set()


@pytest.mark.parametrize('pubname', [None, 7, ['x'], '', '   '])
def test_pubname_must_be_text(pubname):
    document = products_with_item({'path': 'x'})
    document['products']['p']['versions']['1']['pubname'] = pubname
    version, _ = only_version(document)
    assert version.pubname is None


def test_products_without_pubname_or_arch():
    version, _ = only_version(products_with_item({'path': 'x'}))
    assert version.pubname is None and version.architecture is None


@pytest.mark.parametrize('document, complaint', [
    (INDEX, 'is an index, not a products file'),
    ({'products': {}}, 'is not a simplestreams products file'),
    ({'format': 'products:1.0', 'products': ['p']}, 'has no "products"'),
    ({'format': 'products:1.0'}, 'has no "products"'),
    (dict(PRODUCTS, datatype='image-ids'), 'lists "image-ids"'),
    (b'{"format": "products:1.0", "products": {', 'is not valid JSON'),
    (deep(container=dict), 'is not a simplestreams products file'),
])
def test_documents_that_are_not_products_files(document, complaint):
    with pytest.raises(SimplestreamsError) as caught:
        parse_products(document, UBUNTU_PRODUCTS, UBUNTU)
    assert complaint in str(caught.value)
    assert UBUNTU_PRODUCTS in str(caught.value)
    assert '\n' not in str(caught.value)


# ------------------------------------------------------------ hostile input

@pytest.mark.parametrize('products, complaint', [
    ({'p': 'a string'}, 'skipped product "p": not a JSON object'),
    ({'p': ['x']}, 'skipped product "p": not a JSON object'),
    ({'p': {}}, 'skipped product "p": it has no "versions" object'),
    ({'p': {'versions': ['1']}},
     'skipped product "p": it has no "versions" object'),
    ({'p': {'versions': {'1': 7}}},
     'skipped product "p" version "1": not a JSON object'),
    ({'p': {'versions': {'1': {}}}},
     'skipped product "p" version "1": it has no "items" object'),
    ({'p': {'versions': {'1': {'items': [{'path': 'x'}]}}}},
     'skipped product "p" version "1": it has no "items" object'),
    ({'p': {'versions': {'1': {'items': {}}}}},
     'skipped product "p" version "1": it has no usable items'),
    ({'p': {'versions': {'1': {'items': {'x': None}}}}},
     'skipped product "p" version "1" item "x": not a JSON object'),
])
def test_levels_that_are_not_objects_are_skipped(products, complaint):
    document = copy.deepcopy(CIRROS_PRODUCTS)
    document['products'].update(products)
    versions, warnings = parse_products(document, CIRROS + 'streams/v1/x',
                                        CIRROS)
    assert [v.product for v in versions] == [
        'net.cirros-cloud:standard:0.3:x86_64'] * 2
    assert complaint in warnings


@pytest.mark.parametrize('path, complaint', [
    (None, 'is missing'),
    ('', 'is empty'),
    (['x'], 'is a list, not text'),
    ('/etc/passwd', 'is absolute'),
    ('//evil.example.com/disk.img', 'is absolute'),
    ('http://evil.example.com/disk.img', 'names a URL scheme'),
    ('javascript:alert(1)', 'names a URL scheme'),
    ('C:/disk.img', 'names a URL scheme'),
    ('server/../../../etc/passwd', 'climbs out with ".."'),
    ('server/%2E%2E/%2e%2e/etc/passwd', 'climbs out with ".."'),
    ('server/..', 'climbs out with ".."'),
    ('server/..%5c..%5cdisk.img', 'backslash'),
    ('server/disk.img\r\nHost: evil', 'control characters'),
])
def test_item_paths_must_stay_under_the_mirror(path, complaint):
    version, warnings = only_version(products_with_item(
        {'ftype': 'disk1.img', 'path': path, 'sha256': 'a' * 64}))
    assert list(version.items) == ['good']
    assert len(warnings) == 1
    assert warnings[0].startswith('skipped product "p" version "1" item '
                                  '"bad": its path ')
    assert complaint in warnings[0]
    assert warnings[0].endswith('paths must stay under the mirror')


@pytest.mark.parametrize('path', ['a.img', './a.img', 'a/b/c.img',
                                  'a..b/c..img', 'dir.../x', 'a%20b.img',
                                  'x?y=1', u'd\u00e9bian/disk.img'])
def test_unusual_but_safe_paths_are_kept(path):
    version, warnings = only_version(products_with_item({'path': path}))
    assert warnings == []
    assert version.items['bad'].url.startswith(UBUNTU)
    assert version.items['bad'].path == path


@pytest.mark.parametrize('size, expected, complaint', [
    (1024, 1024, None),
    (0, 0, None),
    (2 ** 40, 2 ** 40, None),
    (1024.0, 1024, None),
    (None, None, None),
    (True, None, 'is true, not a number'),
    (False, None, 'is false, not a number'),
    (-1, None, 'is negative'),
    pytest.param(-10 ** 5000, None, 'is negative', id='-10**5000'),
    (json.loads('1e999'), None, 'is not a finite number'),
    (json.loads('-1e999'), None, 'is not a finite number'),
    (float('nan'), None, 'is not a finite number'),
    (1.5, None, 'is the number 1.5, not a whole number'),
    (2 ** 64, None, 'is too large'),
    (1e300, None, 'is too large'),
    ('1024', None, 'is "1024", not a number'),
    (['1024'], None, 'is a list, not a number'),
    (deep(), None, 'is a list, not a number'),
])
def test_item_sizes(size, expected, complaint):
    version, warnings = only_version(products_with_item(
        {'path': 'x', 'size': size}))
    item = version.items['bad']
    assert item.size == expected
    assert isinstance(item.size, (type(None),) + six.integer_types)
    assert not isinstance(item.size, bool)
    if complaint is None:
        assert warnings == []
    else:
        assert warnings == [u'product "p" version "1" item "bad": its size '
                            u'{0}; taken as unknown'.format(complaint)]


@pytest.mark.parametrize('field, value, expected', [
    ('sha256', 'AB' * 32, 'ab' * 32),
    ('sha256', ' ' + 'a' * 64 + '\n', 'a' * 64),
    ('sha256', 'a' * 63, None),
    ('sha256', 'a' * 65, None),
    ('sha256', 'g' * 64, None),
    ('sha256', 'a' * 32, None),  # an md5 in the sha256 field
    ('sha256', 12345, None),
    ('sha256', deep(), None),
    ('md5', 'F' * 32, 'f' * 32),
    ('md5', 'f' * 64, None),
    ('md5', u'\u0660' * 32, None),  # Arabic-Indic digits are not hex
])
def test_item_digests(field, value, expected):
    version, warnings = only_version(products_with_item(
        {'path': 'x', field: value}))
    assert getattr(version.items['bad'], field) == expected
    other = 'md5' if field == 'sha256' else 'sha256'
    assert getattr(version.items['bad'], other) is None
    if expected is None:
        assert len(warnings) == 1
        assert 'its {0} '.format(field) in warnings[0]
        assert warnings[0].endswith('hex digits; ignored')
    else:
        assert warnings == []


def test_strange_names_are_kept_as_they_are():
    names = [u'lone \ud800 surrogate', u'control\x00\x1b[31m\n', u'\u202e',
             u'\U0001f600']
    products = {}
    for name in names:
        products[name] = {'release_title': name, 'versions': {name: {
            'items': {name: {'path': 'x.img', 'ftype': name}}}}}
    document = {'format': PRODUCTS_FORMAT, 'products': products}
    versions, warnings = parse_products(document, UBUNTU_PRODUCTS, UBUNTU)
    assert warnings == []
    assert sorted(v.product for v in versions) == sorted(names)
    for version in versions:
        assert version.version == version.product
        assert version.attributes['release_title'] == version.product
        assert list(version.items) == [version.product]
        assert version.items[version.product].ftype == version.product
        repr(version)


def test_warnings_about_strange_names_do_not_raise():
    name = u'\ud800\x00\n\u00e9'
    document = {'format': PRODUCTS_FORMAT, 'products': {name: {'versions': {
        name: {'items': {name: {'path': '/abs', 'size': 'x'}}}}}}}
    versions, warnings = parse_products(document, UBUNTU_PRODUCTS, UBUNTU)
    assert versions == []
    assert all(isinstance(warning, six.text_type) for warning in warnings)
    assert all(name in warning for warning in warnings)


@pytest.mark.skipif(six.PY2, reason='Python 2 encodes lone surrogates')
def test_a_path_with_a_lone_surrogate_cannot_be_a_url():
    version, warnings = only_version(products_with_item(
        {'path': u'x\udc80.img'}))
    assert list(version.items) == ['good']
    assert 'lone surrogate' in warnings[0]


def test_names_that_are_not_text_are_skipped():
    # json never makes such keys, but parsed data may come from elsewhere.
    document = {'format': PRODUCTS_FORMAT, 'products': {
        7: {'versions': {}}, (1, 2): {}, 'p': {'versions': {
            8: {}, '1': {'items': {None: {}, 'x': {'path': 'x'}}}}}}}
    versions, warnings = parse_products(document, UBUNTU_PRODUCTS, UBUNTU)
    assert [(v.product, v.version, list(v.items)) for v in versions] == [
        ('p', '1', ['x'])]
    assert len(warnings) == 4
    assert all('a name is text' in warning for warning in warnings)


@pytest.mark.parametrize('place', ['top', 'product', 'version', 'item',
                                   'path', 'ftype', 'pubname', 'items',
                                   'versions', 'a product', 'an item'])
def test_deep_nesting_anywhere_does_not_recurse(place):
    value = deep()
    document = products_with_item({'path': 'x'})
    product = document['products']['p']
    version = product['versions']['1']
    item = version['items']['bad']
    if place == 'top':
        document['deep'] = value
    elif place == 'product':
        product['deep'] = value
    elif place == 'version':
        version['deep'] = value
    elif place == 'item':
        item['deep'] = value
    elif place in ('path', 'ftype'):
        item[place] = value
    elif place == 'pubname':
        version['pubname'] = value
    elif place == 'items':
        document['products']['q'] = {'versions': {'1': {'items': value}}}
    elif place == 'versions':
        document['products']['q'] = {'versions': value}
    elif place == 'a product':
        document['products']['q'] = value
    else:
        version['items']['deep'] = value
    versions, warnings = parse_products(document, UBUNTU_PRODUCTS, UBUNTU)
    assert [v.product for v in versions] == ['p']
    assert all('deep' not in v.attributes for v in versions)
    assert all(len(warning) < 300 for warning in warnings)


def test_many_versions_are_read_in_order():
    versions = dict(('2024{0:04d}'.format(n), {'items': {'x': {
        'path': 'v{0}/x.img'.format(n)}}}) for n in range(2000))
    document = {'format': PRODUCTS_FORMAT,
                'products': {'p': {'versions': versions}}}
    parsed, warnings = parse_products(document, UBUNTU_PRODUCTS, UBUNTU)
    assert warnings == []
    assert [v.version for v in parsed] == sorted(versions)
    assert newest_versions(parsed)[0].version == '20241999'


# ------------------------------------------------------------ newest, arch

@pytest.mark.parametrize('older, newer', [
    ('20240101', '20240102'),
    ('20240101', '20240101.1'),
    ('20240101.1', '20240101.2'),
    ('20240101.9', '20240101.10'),
    ('20240101', '20240101_1'),
    ('20240101_9', '20240101_10'),
    ('20231231.10', '20240101'),
    ('9', '10'),
    ('1' * 5000, '1' * 5001),  # more digits than Python 3.11 converts
    ('01', '1'),
    ('', '0'),
])
def test_version_keys_compare_digit_runs_as_numbers(older, newer):
    assert version_key(older) < version_key(newer)
    assert not version_key(newer) < version_key(older)


@pytest.mark.parametrize('value', [None, 7, ['20240101'], u'\ud800'])
def test_version_key_of_odd_values(value):
    assert version_key(value) <= version_key(u'\U0010ffff')


def test_newest_versions_picks_each_products_newest():
    def version(product, serial):
        return simplestreams.Version(product, serial, {}, {})
    versions = [version('b', '20240101.10'), version('a', '20240101'),
                version('b', '20240101.9'), version('a', '20231231'),
                version('a', '20240101_1'), version('b', '20240101')]
    newest = newest_versions(versions)
    assert [(v.product, v.version) for v in newest] == [
        ('b', '20240101.10'), ('a', '20240101_1')]
    assert newest_versions([]) == []


def test_newest_of_a_real_products_file():
    versions, _ = parse_products(PRODUCTS, UBUNTU_PRODUCTS, UBUNTU)
    assert [(v.product, v.version) for v in newest_versions(versions)] == [
        ('com.ubuntu.cloud:server:22.04:amd64', '20240223'),
        ('com.ubuntu.cloud:server:22.04:arm64', '20240207')]


@pytest.mark.parametrize('arch, expected', [
    ('amd64', 'x86_64'), ('x86_64', 'x86_64'), ('X86_64', 'x86_64'),
    ('arm64', 'arm64'), ('aarch64', 'arm64'), ('AArch64', 'arm64'),
    ('i386', 'i386'), ('i486', 'i386'), ('i586', 'i386'), ('i686', 'i386'),
    ('x86', 'i386'), (' amd64 ', 'x86_64'),
    ('armhf', 'armhf'), ('PPC64EL', 'ppc64el'), ('s390x', 's390x'),
    ('', None), (None, None), (64, None), (['amd64'], None),
])
def test_ec2_architecture(arch, expected):
    assert ec2_architecture(arch) == expected


@pytest.mark.skipif(tracemalloc is None, reason='Python 2.7 has no '
                    'tracemalloc (test_hostile.py measures the command)')
def test_inheritance_costs_memory_in_proportion_to_the_document():
    # Every item inherits every attribute of the top: copied down, n of
    # each cost n * n; looked up, four times the document costs four times
    # the memory (its JSON, its items), give or take.
    peaks = {}
    for count in (1000, 4000):
        document = json.loads(products_bomb(count).decode('utf-8'))
        tracemalloc.start()
        try:
            versions, _ = parse_products(document, UBUNTU_PRODUCTS)
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        (version,) = versions
        item = version.items['item{0}'.format(count - 1)]
        assert item.attributes['attribute{0}'.format(count - 1)] == count - 1
        assert item.attributes['arch'] == 'amd64'
        assert len(item.attributes) == count + 4
    assert peaks[4000] < 8 * peaks[1000], peaks


def test_attributes_are_the_levels_merged_lower_first():
    top = simplestreams.Attributes({'os': 'ubuntu', 'arch': 'top'})
    version = simplestreams.Attributes({'arch': 'amd64', 'label': 'x'}, top)
    assert dict(version) == {'os': 'ubuntu', 'arch': 'amd64', 'label': 'x'}
    assert version == {'os': 'ubuntu', 'arch': 'amd64', 'label': 'x'}
    assert 'os' in version and 'path' not in version
    assert version.get('path') is None
    assert sorted(version) == ['arch', 'label', 'os'] and len(version) == 3
