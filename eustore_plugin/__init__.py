# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-plugin: list the images of an image store and install them into a
Eucalyptus or other EC2/S3-compatible cloud, as euca2ools commands.
"""

from eustore_plugin import compat

__version__ = '0.1.0'

# requestbuilder must be made whole before any command class is built on it.
compat.install()
