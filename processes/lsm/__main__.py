"""lsm.exe: the Local Session Manager (session 0, started by wininit)."""

from nt.bootstrap import run
from processes.lsm.lsm import main

run("lsm.exe", main)
