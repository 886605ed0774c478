"""The process table: a node's live processes by pid, and the names registered for them."""

from __future__ import annotations

from .process import Process
from .terms import Atom, Pid

__all__ = ["ProcessTable"]


class ProcessTable:
    """Live local processes; a process leaves the table (and its name) when it terminates."""

    def __init__(self) -> None:
        self.by_pid: dict[Pid, Process] = {}
        self.by_name: dict[Atom, Process] = {}

    def add(self, proc: Process) -> None:
        self.by_pid[proc.pid] = proc

    def remove(self, proc: Process) -> None:
        self.by_pid.pop(proc.pid, None)
        if proc.name is not None and self.by_name.get(proc.name) is proc:
            del self.by_name[proc.name]

    def register(self, proc: Process, name: str) -> None:
        atom = Atom(name)
        if atom in self.by_name or proc.name is not None:
            raise ValueError(f"cannot register {proc.pid} as {name!r}: name or process already registered")
        self.by_name[atom] = proc
        proc.name = atom

    def local(self, pid: Pid) -> Process | None:
        return self.by_pid.get(pid)

    def named(self, name: Atom) -> Process | None:
        return self.by_name.get(name)

    def processes(self) -> list[Process]:
        """A snapshot: safe to iterate while processes terminate."""
        return list(self.by_pid.values())
