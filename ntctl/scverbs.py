"""``ntctl sc VERB ...``: sc.exe's verbs, registered with the lean dispatcher. Arguments are
sc.exe's (``start= demand``, ``binPath= PATH``); the bodies live in ntctl/scclient.py and
are imported when a verb runs, so other verbs do not pay for the svcctl client."""

from __future__ import annotations

from pathlib import Path

from ntctl.cli import Arg, Opt
from ntctl.verbkit import JSON, ROOT, app

sc_app = app.group("sc", "sc.exe: query, configure and control services (services.exe).")
ARGS = Arg("args", many=True, help="sc.exe's arguments (NAME, key= value ...)")


@sc_app.verb("query", ARGS, ROOT, JSON)
def sc_query(args: list[str], root: Path, as_json: bool) -> None:
    """sc query [NAME] [type= driver|service|all] [state= all|inactive]: service status."""
    from ntctl import scclient

    scclient.query(args, root, as_json)


@sc_app.verb("queryex", ARGS, ROOT, JSON)
def sc_queryex(args: list[str], root: Path, as_json: bool) -> None:
    """sc queryex [NAME]: status with PID and FLAGS."""
    from ntctl import scclient

    scclient.queryex(args, root, as_json)


@sc_app.verb("qc", ARGS, ROOT, JSON)
def sc_qc(args: list[str], root: Path, as_json: bool) -> None:
    """sc qc NAME: the service's configuration."""
    from ntctl import scclient

    scclient.qc(args, root, as_json)


@sc_app.verb("qdescription", ARGS, ROOT, JSON)
def sc_qdescription(args: list[str], root: Path, as_json: bool) -> None:
    """sc qdescription NAME: the description."""
    from ntctl import scclient

    scclient.qdescription(args, root, as_json)


@sc_app.verb("qfailure", ARGS, ROOT, JSON)
def sc_qfailure(args: list[str], root: Path, as_json: bool) -> None:
    """sc qfailure NAME: the FailureActions."""
    from ntctl import scclient

    scclient.qfailure(args, root, as_json)


@sc_app.verb("enumdepend", ARGS, ROOT, JSON)
def sc_enumdepend(args: list[str], root: Path, as_json: bool) -> None:
    """sc enumdepend NAME: the services that depend on NAME."""
    from ntctl import scclient

    scclient.enumdepend(args, root, as_json)


@sc_app.verb("start", ARGS, ROOT, JSON)
def sc_start(args: list[str], root: Path, as_json: bool) -> None:
    """sc start NAME [ARGS...]: start a service."""
    from ntctl import scclient

    scclient.start(args, root, as_json)


@sc_app.verb("stop", ARGS, ROOT, JSON)
def sc_stop(args: list[str], root: Path, as_json: bool) -> None:
    """sc stop NAME: send STOP."""
    from ntctl import scclient

    scclient.stop(args, root, as_json)


@sc_app.verb("pause", ARGS, ROOT, JSON)
def sc_pause(args: list[str], root: Path, as_json: bool) -> None:
    """sc pause NAME: send PAUSE."""
    from ntctl import scclient

    scclient.pause(args, root, as_json)


@sc_app.verb("continue", ARGS, ROOT, JSON)
def sc_continue(args: list[str], root: Path, as_json: bool) -> None:
    """sc continue NAME: send CONTINUE."""
    from ntctl import scclient

    scclient.continue_(args, root, as_json)


@sc_app.verb("interrogate", ARGS, ROOT, JSON)
def sc_interrogate(args: list[str], root: Path, as_json: bool) -> None:
    """sc interrogate NAME: send INTERROGATE."""
    from ntctl import scclient

    scclient.interrogate(args, root, as_json)


PASSWORD_STDIN = Opt(
    "--password-stdin", flag=True, help="the obj= account's password: the first line of stdin"
)


@sc_app.verb("config", ARGS, ROOT, PASSWORD_STDIN, JSON)
def sc_config(args: list[str], root: Path, password_stdin: bool, as_json: bool) -> None:
    """sc config NAME [type= ] [start= ] [error= ] [binPath= ] [group= ] [depend= ] [obj= ] [DisplayName= ] (obj= .\\USER: the password from a prompt or --password-stdin)"""
    from ntctl import scclient

    scclient.config(args, root, as_json, scclient.account_password(args, password_stdin))


@sc_app.verb("create", ARGS, ROOT, PASSWORD_STDIN, JSON)
def sc_create(args: list[str], root: Path, password_stdin: bool, as_json: bool) -> None:
    """sc create NAME binPath= PATH [type= own] [start= demand] [error= normal] [depend= A/B] [obj= ]"""
    from ntctl import scclient

    scclient.create(args, root, as_json, scclient.account_password(args, password_stdin))


@sc_app.verb("delete", ARGS, ROOT, JSON)
def sc_delete(args: list[str], root: Path, as_json: bool) -> None:
    """sc delete NAME: marked for delete until it stops."""
    from ntctl import scclient

    scclient.delete(args, root, as_json)


@sc_app.verb("description", ARGS, ROOT, JSON)
def sc_description(args: list[str], root: Path, as_json: bool) -> None:
    """sc description NAME TEXT: set the description."""
    from ntctl import scclient

    scclient.description(args, root, as_json)


@sc_app.verb("failure", ARGS, ROOT, JSON)
def sc_failure(args: list[str], root: Path, as_json: bool) -> None:
    """sc failure NAME reset= SECONDS actions= restart/MS/run/MS/reboot/MS [reboot= MSG] [command= CMD]"""
    from ntctl import scclient

    scclient.failure(args, root, as_json)


@sc_app.verb("order", ARGS, ROOT, JSON)
def sc_order(args: list[str], root: Path, as_json: bool) -> None:
    """sc order: the auto-start order the SCM computes, and why, position by position."""
    from ntctl import scclient

    scclient.order(args, root, as_json)


@sc_app.verb("sdshow", ARGS, ROOT, JSON)
def sc_sdshow(args: list[str], root: Path, as_json: bool) -> None:
    """sc sdshow NAME|scmanager: the security descriptor's DACL in SDDL."""
    from ntctl import scsecurity

    scsecurity.sdshow(args, root, as_json)


@sc_app.verb("sdset", ARGS, ROOT, JSON)
def sc_sdset(args: list[str], root: Path, as_json: bool) -> None:
    """sc sdset NAME|scmanager SDDL: replace the DACL (and owner/group if given)."""
    from ntctl import scsecurity

    scsecurity.sdset(args, root, as_json)
