"""condemo.exe: a small console program (AllocConsole, a banner, a tick line, a prompt)."""

from nt.bootstrap import run
from processes.condemo.condemo import main

run("condemo.exe", main)
