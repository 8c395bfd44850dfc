"""explorer.exe: the user's shell."""

from nt.bootstrap import run
from processes.explorer.explorer import main

run("explorer.exe", main)
