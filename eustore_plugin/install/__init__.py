# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Installing one store image into a cloud, and taking it out again.

- plan.py: what an install does, decided before any I/O;
- preflight.py: its checks, one ordered list that the install runs to the
  first problem and --dry-run runs to the end;
- sources.py: where the image comes from (the store's stream, a download,
  a local tarball, a whole-disk image); workarea.py: where large files go;
- installer.py: the one algorithm from source to registered ids, over a
  target: where the image goes (target.py chooses; builtin.py and
  euca2oolstarget.py make instance-store bundles);
- snapshot.py: a whole-disk image into a new EBS snapshot, block by block
  through the EBS direct APIs (uploads.py: the bounded pool of uploads its
  blocks go up through);
- bundlekeys.py: the certificates and key bundling needs;
- journal.py: what an install created, written down to be undone;
- installed.py and uninstaller.py: what came from stores, and removing it.

Imports catalogs/, store/, images/, cloud/, bundle/ and the shared small
modules; never commands/ or publish/.
"""
