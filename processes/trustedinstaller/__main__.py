"""TrustedInstaller.exe: Windows Modules Installer, an own-process demand-start service."""

from nt.bootstrap import run
from processes.trustedinstaller.trustedinstaller import main

run("TrustedInstaller.exe", main)
