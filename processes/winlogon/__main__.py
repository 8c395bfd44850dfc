"""winlogon.exe: the logon process of an interactive session."""

from nt.bootstrap import run
from processes.winlogon.winlogon import main

run("winlogon.exe", main)
