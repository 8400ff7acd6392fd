# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What stores say: eustore catalogs (catalog.py), simplestreams indexes and
products files (simplestreams.py), virt-builder indexes (virtbuilder.py),
the rules all three share (sourceformat.py), and the last two seen as
catalogs (sources.py).

No I/O: documents come in as bytes and leave as objects, so all of it is
tested without a network.  Imports only the package's shared small
modules (errors, values).
"""
