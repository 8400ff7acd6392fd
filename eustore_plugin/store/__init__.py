# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The store client: the store as a requestbuilder service and how its files
are read (service.py), which kind of store a URL is (kinds.py), reading its
catalog whatever the kind (reader.py), the user's trust policy (trust.py,
with OpenPGP in openpgp.py), the user's cached copies (cache.py), which URLs
a store may send the tools to (urlpolicy.py), and resumable, bounded,
verified downloads (download.py).

Everything here reads what a hostile store sends (docs/threat-model.md).
Imports catalogs/ and the shared small modules; nothing about clouds.
"""
