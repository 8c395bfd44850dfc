"""autochk.exe: BootExecute's ``autocheck autochk *``: check the volumes, report, exit."""

from nt.bootstrap import Process, run
from processes.autochk.check import check_volumes


def main(proc: Process) -> int:
    args = proc.command_line.split(maxsplit=1)
    reports = check_volumes(proc.root, args[1] if len(args) > 1 else "*")
    status = 0
    for report in reports:
        for line in report.lines:
            proc.nt.display_string(line)
        for problem in report.problems:
            proc.log.warning(
                "autochk.problem", path=problem.path, status=problem.status, detail=problem.message
            )
        proc.log.info(
            "autochk.volume",
            volume=report.volume,
            files=len(report.files_checked),
            problems=len(report.problems),
        )
        status = status or int(report.status)
    return status


run("autochk.exe", main)
