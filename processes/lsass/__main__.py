"""lsass.exe: the Local Security Authority process (session 0, started by wininit)."""

from nt.bootstrap import run
from processes.lsass.lsass import main

run("lsass.exe", main)
