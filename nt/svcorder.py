r"""Start order of services and drivers: groups, tags, dependencies, delayed auto-start.

One module for the two places that order ``Services\*``: the kernel's driver loader
(IoInitSystem: boot-start, then system-start drivers) and the SCM (auto-start services,
then delayed auto-start ones). Pure: no registry, no I/O; the callers read the values.

Public API (stable; the SCM and the kernel import it):

``ServiceEntry(name, start, type, group, tag, depend_on_service, depend_on_group, delayed)``
    One ``Services\<name>`` key, the values that decide its place. ``entry_from_values``
    builds one from a key's values (``None`` for a key without Type, Start or ErrorControl,
    which the SCM skips: nt-spec §4.1).
``compute_order(entries, group_list, group_tags, *, start_types={2}, running=(),
pull_dependencies=True) -> Order``
    ``group_list`` is ``Control\ServiceGroupOrder\List``; ``group_tags`` maps a group name
    to its ``Control\GroupOrderList`` value (the raw REG_BINARY bytes, or the tags already
    decoded). ``start_types`` picks the entries to start (SCM: {2}; loader: {0}, then {1}).
    ``running`` names entries already running (loaded drivers): a dependency on them is
    met and they are never in the sequence. ``pull_dependencies`` True is the SCM's rule
    (a dependency of any start type but disabled is started first, a missing or disabled
    one fails the dependent); False is the loader's (dependencies only order the drivers
    of the same phase; anything else is ignored).
``Order``
    ``.sequence``: names in start order. ``.reasons``: name -> ``Reason`` (position, group
    i of n, tag and its place in the vector, pulled forward by whom, delayed; ``.text`` is
    the sentence ``sc order`` prints). ``.errors``: name -> ``OrderError`` (win32 code and
    name, why) for the entries that must not start. ``.explain(name)``.

Rules (nt-spec §4.4–4.7, learn.microsoft.com "Automatically Starting Services",
``SERVICE_DELAYED_AUTO_START_INFO``):
- Entries are taken in registry enumeration order (names compared case-insensitively, as
  the hive sorts subkeys), whatever order the caller passes them in.
- Groups in ``List`` order, compared case-insensitively (duplicates: first wins). Within
  a group, the tags in ``GroupOrderList`` vector order, then entries whose tag is absent
  from the vector (or who have none). A vector shorter than its count, or missing, gives
  no tags (ReactOS ``groupdb.c``). Entries of groups not in the list follow the listed
  groups, in enumeration order; entries without a group come last.
- Before an entry starts, its ``DependOnService`` entries, then the members of its
  ``DependOnGroup`` groups (those that will start, in group order), are placed,
  depth-first: that is "pulled forward". A group dependency is met by any running member.
- A dependency cycle: every entry of the cycle gets ERROR_CIRCULAR_DEPENDENCY (1059); a
  dependency that does not exist: ERROR_SERVICE_DEPENDENCY_DELETED (1075) for that entry
  only. An entry whose dependency cannot start (one of those, disabled, a group with no
  member that will start) gets ERROR_SERVICE_DEPENDENCY_FAIL (1068): Windows would try
  and fail it the same way. Everything else still starts.
- Delayed auto-start (Start=2 with ``DelayedAutostart``=1) follows every other auto-start
  entry, unless a non-delayed one depends on it (then it is pulled forward, as the SCM
  starts it on demand). A delayed entry in a load-ordering group is not delayed: Windows
  forbids that combination and the group wins.
- The order between ``DependOnService`` and ``DependOnGroup`` of one entry is not
  documented; services first is the model's choice.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nt.graph import shortest_cycle, strongly_connected
from nt.win32 import Win32Error, error_name
from nt.winsvc import (  # noqa: F401  (re-exported: the order's callers name start types)
    SC_GROUP_IDENTIFIER,
    SERVICE_AUTO_START,
    SERVICE_BOOT_START,
    SERVICE_DEMAND_START,
    SERVICE_DISABLED,
    SERVICE_SYSTEM_START,
    START_NAMES,
)

# The win32 errors this module reports.
ERROR_SERVICE_DEPENDENCY_FAIL = Win32Error.ERROR_SERVICE_DEPENDENCY_FAIL
ERROR_CIRCULAR_DEPENDENCY = Win32Error.ERROR_CIRCULAR_DEPENDENCY
ERROR_SERVICE_DEPENDENCY_DELETED = Win32Error.ERROR_SERVICE_DEPENDENCY_DELETED


@dataclass(frozen=True)
class ServiceEntry:
    """The values of one ``Services\\<name>`` key that decide where it starts."""

    name: str
    start: int = SERVICE_AUTO_START
    type: int = 0x10
    group: str = ""
    tag: int | None = None
    depend_on_service: tuple[str, ...] = ()
    depend_on_group: tuple[str, ...] = ()
    delayed: bool = False


@dataclass(frozen=True)
class Reason:
    """Why an entry is where it is: the record behind one line of ``sc order``."""

    position: int  # 1-based place in Order.sequence
    name: str
    group: str  # as the entry spells it; "" for none
    group_index: int | None  # 1-based place in ServiceGroupOrder\List; None if unlisted
    group_count: int  # how many groups the list has
    tag: int | None
    tag_index: int | None  # 1-based place of the tag in the group's GroupOrderList vector
    tag_count: int  # length of that vector (0: no vector)
    pulled_by: str | None = None  # the entry whose start pulled this one forward
    via_group: str | None = None  # ... through its DependOnGroup on this group
    delayed: bool = False  # started in the delayed auto-start pass
    start: int = SERVICE_AUTO_START
    text: str = ""

    @property
    def kind(self) -> str:
        """dependency | delayed | group | unlisted-group | ungrouped."""
        if self.pulled_by is not None:
            return "dependency"
        if self.delayed:
            return "delayed"
        if not self.group:
            return "ungrouped"
        return "group" if self.group_index is not None else "unlisted-group"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind}


@dataclass(frozen=True)
class OrderError:
    """An entry that must not be started, with the win32 error its start gets."""

    name: str
    code: int
    detail: str
    cycle: tuple[str, ...] = ()  # 1059: the entries of the cycle
    missing: tuple[str, ...] = ()  # 1075: the dependencies that do not exist
    dependency: str | None = None  # 1068: the dependency (or "+group") that cannot start

    @property
    def error(self) -> str:
        return error_name(self.code)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error": self.error}


@dataclass(frozen=True)
class Order:
    sequence: tuple[str, ...]
    reasons: dict[str, Reason] = field(default_factory=dict)
    errors: dict[str, OrderError] = field(default_factory=dict)

    def explain(self, name: str) -> str:
        """The reason text, or the error, for ``name`` (case-insensitive)."""
        for table in (self.reasons, self.errors):
            for key, item in table.items():
                if key.upper() == name.upper():
                    return item.text if isinstance(item, Reason) else item.detail
        return f"{name} is not started by this order"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": list(self.sequence),
            "reasons": [self.reasons[n].as_dict() for n in self.sequence],
            "errors": [e.as_dict() for e in self.errors.values()],
        }


def parse_tag_vector(data: bytes | Sequence[int] | None) -> tuple[int, ...]:
    """A ``GroupOrderList`` value: DWORD count, then that many DWORD tags. A value
    shorter than its count says (or not binary at all) gives no tags, as in ReactOS."""
    if data is None:
        return ()
    if not isinstance(data, bytes | bytearray | memoryview):
        return tuple(int(t) for t in data)
    raw = bytes(data)
    if len(raw) < 4:
        return ()
    (count,) = struct.unpack_from("<I", raw)
    if len(raw) < 4 * (count + 1):
        return ()
    return struct.unpack_from(f"<{count}I", raw, 4)


def tag_vector_bytes(tags: Sequence[int]) -> bytes:
    """The REG_BINARY form of a tag vector (for configurations and tests)."""
    return struct.pack(f"<{len(tags) + 1}I", len(tags), *tags)


def entry_from_values(name: str, values: Mapping[str, Any]) -> ServiceEntry | None:
    """A ``ServiceEntry`` from a key's values ({value name: data}; names compared
    case-insensitively). ``None`` when Type, Start or ErrorControl is missing."""
    v = {k.upper(): d for k, d in values.items()}
    if not all(isinstance(v.get(k), int) for k in ("TYPE", "START", "ERRORCONTROL")):
        return None
    tag = v.get("TAG")
    return ServiceEntry(
        name=name,
        start=v["START"],
        type=v["TYPE"],
        group=v["GROUP"] if isinstance(v.get("GROUP"), str) else "",
        tag=tag if isinstance(tag, int) else None,
        depend_on_service=_names(v.get("DEPENDONSERVICE")),
        depend_on_group=_names(v.get("DEPENDONGROUP")),
        delayed=v.get("DELAYEDAUTOSTART") == 1,
    )


def _names(data: Any) -> tuple[str, ...]:
    if isinstance(data, str):  # REG_SZ where REG_MULTI_SZ belongs: one name
        data = [data]
    if not isinstance(data, list | tuple):
        return ()
    return tuple(s for s in data if isinstance(s, str) and s)


def _split(e: ServiceEntry) -> tuple[list[str], list[str]]:
    """(services, groups) an entry depends on; ``+name`` in DependOnService is a group."""
    services = [s for s in e.depend_on_service if not s.startswith(SC_GROUP_IDENTIFIER)]
    groups = [*e.depend_on_group]
    groups += [s[1:] for s in e.depend_on_service if s.startswith(SC_GROUP_IDENTIFIER)]
    return services, groups


def compute_order(
    entries: Iterable[ServiceEntry],
    group_list: Sequence[str],
    group_tags: Mapping[str, bytes | Sequence[int]] | None = None,
    *,
    start_types: Collection[int] = (SERVICE_AUTO_START,),
    running: Collection[str] = (),
    pull_dependencies: bool = True,
) -> Order:
    """The start order of the entries whose Start is in ``start_types`` (module docstring)."""
    return _Orderer(
        entries, group_list, group_tags or {}, start_types, running, pull_dependencies
    ).run()


class _Orderer:
    def __init__(
        self,
        entries: Iterable[ServiceEntry],
        group_list: Sequence[str],
        group_tags: Mapping[str, bytes | Sequence[int]],
        start_types: Collection[int],
        running: Collection[str],
        pull: bool,
    ) -> None:
        self.entries = sorted(entries, key=lambda e: e.name.upper())
        self.key = {}
        for i, e in enumerate(self.entries):
            k = e.name.upper()
            if k in self.key:
                raise ValueError(f"two entries named {e.name!r} (names are case-insensitive)")
            self.key[k] = i
        self.group_index: dict[str, int] = {}
        for g in group_list:
            self.group_index.setdefault(g.upper(), len(self.group_index))
        self.group_count = len(self.group_index)
        self.tags = {g.upper(): parse_tag_vector(v) for g, v in group_tags.items()}
        self.start_types = frozenset(start_types)
        self.running = {n.upper() for n in running}
        self.pull = pull
        self.members: dict[str, list[int]] = {}
        for i, e in enumerate(self.entries):
            if e.group:
                self.members.setdefault(e.group.upper(), []).append(i)
        self.target = [
            e.start in self.start_types and e.name.upper() not in self.running for e in self.entries
        ]
        self.errors: dict[int, OrderError] = {}

    # -- where an entry goes on its own ------------------------------------------------
    def delayed(self, i: int) -> bool:
        e = self.entries[i]
        return e.delayed and e.start == SERVICE_AUTO_START and not e.group

    def tag_rank(self, i: int) -> tuple[int | None, int]:
        """(1-based index of the tag in its group's vector or None, vector length)."""
        e = self.entries[i]
        vector = self.tags.get(e.group.upper(), ()) if e.group else ()
        if e.tag is not None and e.tag in vector:
            return vector.index(e.tag) + 1, len(vector)
        return None, len(vector)

    def natural_key(self, i: int) -> tuple[int, int, int, int, int]:
        e = self.entries[i]
        gi = self.group_index.get(e.group.upper()) if e.group else None
        if not e.group:
            bucket, gpos, trank = 2, 0, 0
        elif gi is None:
            bucket, gpos, trank = 1, 0, 0
        else:
            t, n = self.tag_rank(i)
            bucket, gpos, trank = 0, gi, (t - 1 if t is not None else n)
        return (int(self.delayed(i)), bucket, gpos, trank, i)

    # -- dependencies --------------------------------------------------------------------
    def resolve(self) -> list[list[int]]:
        """Edges (dependent -> dependencies, in placement order); records 1075 and the
        static 1068s (disabled dependency, group with nothing that will start)."""
        edges: list[list[int]] = [[] for _ in self.entries]
        for i, e in enumerate(self.entries):
            missing: list[str] = []
            services, groups = _split(e)
            for name in services:
                j = self.key.get(name.upper())
                if j is None:
                    missing.append(name)
                elif j == i:
                    edges[i].append(i)  # CreateService refuses this with 1059 too
                elif self.entries[j].name.upper() in self.running:
                    continue
                elif self.entries[j].start == SERVICE_DISABLED and self.pull:
                    self._fail(i, ERROR_SERVICE_DEPENDENCY_FAIL, name, f"{name} is disabled")
                elif self.pull or self.target[j]:
                    edges[i].append(j)
            for group in groups:
                members = [j for j in self.members.get(group.upper(), []) if j != i]
                if not members:
                    missing.append(SC_GROUP_IDENTIFIER + group)
                    continue
                if any(self.entries[j].name.upper() in self.running for j in members):
                    continue  # DependOnGroup is met by one running member
                starting = sorted((j for j in members if self.target[j]), key=self.natural_key)
                if not starting and self.pull:
                    self._fail(
                        i,
                        ERROR_SERVICE_DEPENDENCY_FAIL,
                        SC_GROUP_IDENTIFIER + group,
                        f"no member of group {group} is running or will start",
                    )
                edges[i] += starting
            if missing and self.pull:
                self.errors[i] = OrderError(
                    e.name,
                    ERROR_SERVICE_DEPENDENCY_DELETED,
                    f"{e.name} depends on {', '.join(missing)}, which does not exist",
                    missing=tuple(missing),
                )
        return edges

    def _fail(self, i: int, code: int, dependency: str, why: str) -> None:
        if i not in self.errors:
            name = self.entries[i].name
            self.errors[i] = OrderError(
                name, code, f"{name} cannot start: {why}", dependency=dependency
            )

    def reachable(self, edges: list[list[int]]) -> list[int]:
        """Targets and everything they pull, in index order."""
        seen = [False] * len(self.entries)
        stack = [i for i, t in enumerate(self.target) if t]
        for i in stack:
            seen[i] = True
        while stack:
            for j in edges[stack.pop()]:
                if not seen[j]:
                    seen[j] = True
                    stack.append(j)
        return [i for i, s in enumerate(seen) if s]

    def propagate(self, comps: list[list[int]], edges: list[list[int]]) -> None:
        """1059 for cycles, then 1068 for whatever depends on an entry that cannot start."""
        for comp in comps:
            if len(comp) > 1 or comp[0] in edges[comp[0]]:
                for j in comp:
                    names = tuple(self.entries[k].name for k in shortest_cycle(comp, edges, j))
                    self.errors[j] = OrderError(
                        self.entries[j].name,
                        ERROR_CIRCULAR_DEPENDENCY,
                        f"{self.entries[j].name} is in a dependency cycle: "
                        + " -> ".join((*names, names[0])),
                        cycle=names,
                    )
                continue
            (i,) = comp
            if i in self.errors or not self.pull:
                continue
            for name in _split(self.entries[i])[0]:
                j = self.key.get(name.upper())
                if j is not None and j in self.errors and j != i:
                    self._fail(i, ERROR_SERVICE_DEPENDENCY_FAIL, name, f"{name} cannot start")
                    break
            else:
                self._group_failures(i, edges)

    def _group_failures(self, i: int, edges: list[list[int]]) -> None:
        """A group dependency fails only when every member that would start fails."""
        for group in _split(self.entries[i])[1]:
            members = [j for j in edges[i] if self.entries[j].group.upper() == group.upper()]
            if members and all(j in self.errors for j in members):
                self._fail(
                    i,
                    ERROR_SERVICE_DEPENDENCY_FAIL,
                    SC_GROUP_IDENTIFIER + group,
                    f"no member of group {group} can start",
                )
                return

    # -- placement -------------------------------------------------------------------------
    def run(self) -> Order:
        edges = self.resolve()
        nodes = self.reachable(edges)
        self.propagate(strongly_connected(nodes, edges), edges)
        placed: dict[int, Reason] = {}
        sequence: list[int] = []
        in_delayed_pass = False
        for i in sorted((i for i in nodes if self.target[i]), key=self.natural_key):
            in_delayed_pass = in_delayed_pass or self.delayed(i)
            self.place(i, edges, placed, sequence, in_delayed_pass)
        names = tuple(self.entries[i].name for i in sequence)
        return Order(
            sequence=names,
            reasons={self.entries[i].name: placed[i] for i in sequence},
            errors={self.entries[i].name: self.errors[i] for i in sorted(self.errors)},
        )

    def place(
        self,
        root: int,
        edges: list[list[int]],
        placed: dict[int, Reason],
        sequence: list[int],
        delayed_pass: bool,
    ) -> None:
        """Depth-first: every dependency of ``root`` before ``root`` (the graph left after
        removing the entries in error is acyclic)."""
        if root in placed or root in self.errors:
            return
        work: list[tuple[int, int, int | None]] = [(root, 0, None)]
        opened = {root}
        while work:
            v, pos, by = work.pop()
            for k in range(pos, len(edges[v])):
                w = edges[v][k]
                if w in placed or w in self.errors or w in opened:
                    continue
                work.append((v, k + 1, by))
                work.append((w, 0, v))
                opened.add(w)
                break
            else:
                placed[v] = self.reason(v, len(sequence) + 1, by, delayed_pass)
                sequence.append(v)

    def reason(self, i: int, position: int, by: int | None, delayed_pass: bool) -> Reason:
        e = self.entries[i]
        gi = self.group_index.get(e.group.upper()) if e.group else None
        tag_index, tag_count = self.tag_rank(i)
        via = None
        if by is not None:
            dependent = self.entries[by]
            direct = {s.upper() for s in dependent.depend_on_service}
            if e.name.upper() not in direct and e.group:
                via = e.group
        own = (
            "delayed auto-start: after every auto-start service"
            if self.delayed(i)
            else self._place_text(e, gi, tag_index, tag_count)
        )
        if by is not None:
            how = (
                f"a member of group {via}, which {self.entries[by].name} depends on (DependOnGroup)"
                if via
                else f"a dependency of {self.entries[by].name} (DependOnService)"
            )
            started = "" if self.target[i] else f", started although {START_NAMES[e.start]}"
            text = f"pulled forward as {how}{started}; its own place: {own}"
        else:
            text = own
        if e.delayed and e.group and e.start == SERVICE_AUTO_START:
            text += f"; DelayedAutostart ignored: member of load-ordering group {e.group}"
        return Reason(
            position=position,
            name=e.name,
            group=e.group,
            group_index=None if gi is None else gi + 1,
            group_count=self.group_count,
            tag=e.tag,
            tag_index=tag_index,
            tag_count=tag_count,
            pulled_by=None if by is None else self.entries[by].name,
            via_group=via,
            delayed=delayed_pass,
            start=e.start,
            text=text,
        )

    def _place_text(
        self, e: ServiceEntry, gi: int | None, tag_index: int | None, tag_count: int
    ) -> str:
        if not e.group:
            return "no group: after every grouped service"
        if gi is None:
            return (
                f"group {e.group} is not in ServiceGroupOrder\\List: "
                f"after the {self.group_count} listed groups"
            )
        text = f"group {gi + 1} of {self.group_count} ({e.group})"
        if tag_index is not None:
            return text + f", tag {e.tag} ({tag_index} of {tag_count} in GroupOrderList)"
        if e.tag is not None and tag_count:
            return text + f", tag {e.tag} not in GroupOrderList: after the tagged ones"
        return text + ", no tag order"
