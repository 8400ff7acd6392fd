# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What a cloud holds, to compare before and after a command that must change
nothing (a dry run): the account's images and every object of every
bucket.
"""

from __future__ import absolute_import

from eustore_plugin.cloud.services import DescribeImages, S3Request, parse_xml


def cloud_state(cloud):
    """(sorted (image id, name, state) of the account's images, {bucket:
    sorted keys}) of ``cloud`` (a direct eustore_plugin Cloud)."""
    answer = cloud._send(DescribeImages, cloud.ec2, {'Owner.1': 'self'})
    images = sorted((image.get('imageId'), image.get('name'),
                     image.get('imageState'))
                    for image in answer.get('imagesSet') or [])
    return images, bucket_state(cloud)


def bucket_state(cloud):
    """{bucket: sorted keys} of every bucket the account has."""
    listing = parse_xml(cloud._send(S3Request, cloud.s3, method='GET',
                                    path='').content, ('Bucket',))
    buckets = ((listing.get('ListAllMyBucketsResult') or {}).get(
        'Buckets') or {}).get('Bucket') or []
    return dict((bucket['Name'], sorted(cloud.list_keys(bucket['Name'])))
                for bucket in buckets if isinstance(bucket, dict))
