# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The user's cloud: its services and requests (services.py), the access keys
they are signed with (auth.py), the operations the commands need on them
as one object (client.py), the EBS direct APIs that write snapshots block
by block (ebs.py), and Eucalyptus' bootstrap service, which hands out the
cloud's certificate (bootstrap.py).

Knows nothing of stores or images; imports only the shared small modules.
"""
