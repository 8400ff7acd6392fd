# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.

import glob
import os.path
import re

from setuptools import find_packages, setup


def read_version():
    with open(os.path.join(os.path.dirname(__file__), 'eustore_plugin',
                           '__init__.py')) as init:
        return re.search(r"__version__ = '([^']+)'", init.read()).group(1)


setup(
    name='eustore-plugin',
    version=read_version(),
    description='List and install machine images from an image store into '
                'a Eucalyptus or EC2/S3-compatible cloud (euca2ools plugin)',
    license='BSD-2-Clause',
    packages=find_packages(exclude=['tests', 'tests.*']),
    python_requires='>=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*, '
                    '!=3.5.*, !=3.6.*, !=3.7.*',
    install_requires=[
        'requestbuilder==0.7.1',
        'requests',
        'six',
        # AES, RSA and X.509 for the built-in bundler.
        'cryptography',
        # The progress bars of requestbuilder's transfer mixin are written
        # against this API (progressbar2 renamed it).
        'progressbar==2.5',
        # requestbuilder's service module imports cgi, removed in 3.13.
        'legacy-cgi; python_version >= "3.13"',
        # ISA-L deflate for the bundler (zlib does the work without it),
        # only where PyPI has wheels of its newest release that pip would
        # pick: CPython 3.9+ on Linux (glibc and musl) and macOS, 64-bit
        # x86 and ARM (macOS ARM from 3.10).  Not 3.8: its last release
        # has no musl wheel, and no marker tells musl from glibc, so pip
        # would compile it there.
        'isal; platform_python_implementation == "CPython" and '
        '(platform_system == "Linux" or platform_system == "Darwin") and '
        '((python_version >= "3.9" and (platform_machine == "x86_64" or '
        'platform_machine == "aarch64")) or (python_version >= "3.10" and '
        'platform_machine == "arm64"))',
    ],
    extras_require={
        'test': ['pytest', 'moto[server]; python_version >= "3.8"',
                 'botocore; python_version >= "3.8"',
                 'argcomplete; python_version >= "3.8"'],
        # Bash completion of the commands' options (see README).
        'completion': ['argcomplete'],
    },
    entry_points={'console_scripts': [
        'eustore-describe-images = '
        'eustore_plugin.commands.describeimages:DescribeImages.run',
        'eustore-install-image = '
        'eustore_plugin.commands.installimage:InstallImage.run',
        'eustore-publish-image = '
        'eustore_plugin.commands.publishimage:PublishImage.run',
        'eustore-withdraw-image = '
        'eustore_plugin.commands.withdrawimage:WithdrawImage.run',
        'eustore-check-store = '
        'eustore_plugin.commands.checkstore:CheckStore.run',
        'eustore-describe-installed = '
        'eustore_plugin.commands.describeinstalled:DescribeInstalled.run',
        'eustore-uninstall-image = '
        'eustore_plugin.commands.uninstallimage:UninstallImage.run',
    ]},
    data_files=[('share/man/man1', sorted(glob.glob('man/*.1')))],
    # One wheel for Python 2.7 and 3: the code is the same on both.
    options={'bdist_wheel': {'universal': True}},
    classifiers=[
        'Environment :: Console',
        'License :: OSI Approved :: BSD License',
        'Programming Language :: Python :: 2.7',
        'Programming Language :: Python :: 3',
        'Topic :: System :: Systems Administration',
    ],
)
