# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Image files as stores ship them: which tarball members are the kernel,
ramdisk and disk image (layout.py, no I/O), reading tar.gz streams
(inflate.py), and whole-disk images, xz and qcow2 (diskimage.py).

Imports bundle/ (the tar reader it shares) and the shared small modules.
"""
