"""services.exe: the service control manager."""

from nt.bootstrap import run
from processes.services.services import main

run("services.exe", main)
