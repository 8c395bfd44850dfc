"""LogonUI.exe: the logon screen, started by winlogon after the SAS."""

from nt.bootstrap import run
from processes.logonui.logonui import main

run("LogonUI.exe", main)
