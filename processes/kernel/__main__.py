"""ntoskrnl: python -m processes.kernel [--root DIR] [--boot OPTIONS] [--profile win10|win7]."""

import sys

sys.modules.setdefault("rich", None)  # the kernel draws nothing: keep structlog from loading rich

import setproctitle  # noqa: E402

from processes.kernel.init import main  # noqa: E402

setproctitle.setproctitle("System")
sys.exit(main())
