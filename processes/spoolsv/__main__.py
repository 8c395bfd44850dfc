"""spoolsv.exe: the print spooler, an own-process service (Spooler)."""

from nt.bootstrap import run
from processes.spoolsv.spoolsv import main

run("spoolsv.exe", main)
