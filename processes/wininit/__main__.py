"""wininit.exe: session 0's initialisation process."""

from nt.bootstrap import run
from processes.wininit.wininit import main

run("wininit.exe", main)
