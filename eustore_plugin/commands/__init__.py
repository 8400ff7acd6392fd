# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""The eustore commands, one per module, as in euca2ools."""
