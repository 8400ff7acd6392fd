# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
eustore-plugin: list the images of an image store and install them into a
Eucalyptus or other EC2/S3-compatible cloud, as euca2ools commands.
"""

import warnings

from eustore_plugin import compat

__version__ = '0.1.0'

# requestbuilder must be made whole before any command class is built on it.
compat.install()

# The last cryptography for Python 2.7 says at every import that Python 2 is
# unsupported; euca2ools' users have no other Python, so it is only noise.
warnings.filterwarnings('ignore', message='Python 2 is no longer supported')
