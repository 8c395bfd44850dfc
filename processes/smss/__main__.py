"""smss.exe: the Session Manager (master, or a per-session instance)."""

from nt.bootstrap import run
from processes.smss.smss import main

run("smss.exe", main)
