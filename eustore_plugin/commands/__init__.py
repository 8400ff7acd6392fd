# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The eustore commands, one per module as in euca2ools, each reading top to
bottom as DESCRIPTION, ARGS, configure, main, print_result; base.py holds
what they share (the suite, the store service, the options declared once,
how a command ends).  Commands hold the command line; the work is in the
packages they import (anything but each other's modules, base.py aside).
"""
