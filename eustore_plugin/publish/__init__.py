# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Running a store, from its operator's side: the store's bucket with its
content-addressed tarballs and its lock (bucket.py), a tarball about to be
published read once (tarball.py), the catalog transaction (transaction.py)
and purging the caches in front of the store (purge.py).

Imports catalogs/, store/, images/, cloud/ and the shared small modules;
never install/ or commands/.
"""
