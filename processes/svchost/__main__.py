"""svchost.exe: the generic service host (and the stand-in host for missing images)."""

from nt.bootstrap import run
from processes.svchost.svchost import main

run("svchost.exe", main)
