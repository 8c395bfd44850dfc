"""csrss.exe: the Client/Server Runtime Subsystem of one session."""

from nt.bootstrap import run
from processes.csrss.csrss import main

run("csrss.exe", main)
