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

# The last cryptography releases for Python 2.7 and 3.8 say at every import
# that the Python is unsupported: on the Python their users have (euca2ools
# has no other than 2.7), it is noise they cannot act on.
warnings.filterwarnings('ignore', message=r'Python (2|3\.8) is no longer '
                        r'supported')
