"""userinit.exe: the user's first process (Run, RunOnce, Startup, the shell)."""

from nt.bootstrap import run
from processes.userinit.userinit import main

run("userinit.exe", main)
