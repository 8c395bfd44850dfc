"""winsrv: one "DLL" with two server initialisations, as on the command line
``ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=winsrv:ConServerDllInitialization,2``.
Both servers share winsrv's globals (``CsrServer.dll_globals("winsrv")``).
"""

from __future__ import annotations

from processes.csrss.consrv import ConServerDllInitialization
from processes.csrss.usersrv import UserServerDllInitialization

__all__ = ["ConServerDllInitialization", "UserServerDllInitialization"]
