# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
What the tests, the demo and the benchmarks share: real services on
loopback (a store, moto's cloud, Varnish), credentials and OpenPGP keys,
seeded images, bundles read back (with the standard tools, and with a
reader of our own), and running the commands as a user does.  Nothing here
imports pytest or a test module.
"""
