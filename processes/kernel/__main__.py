"""ntoskrnl: python -m processes.kernel [--root DIR] [--boot OPTIONS] [--profile win10|win7]."""

import sys

import setproctitle

from processes.kernel.init import main

setproctitle.setproctitle("System")
sys.exit(main())
