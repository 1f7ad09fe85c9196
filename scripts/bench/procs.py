"""Peak memory of a process tree from /proc (Linux), shared by the benchmarks that run real nodes."""

from __future__ import annotations

from pathlib import Path


def tree_peaks(pid: int) -> list[tuple[int, str, int]]:
    """(pid, role, peak resident size VmHWM in KiB) of ``pid`` and its descendants.

    The role is "master" for ``pid``, "scheduler" for a node's job process, "worker" otherwise.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = (Path("/proc") / str(current) / "status").read_text().splitlines()
            words = (Path("/proc") / str(current) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        peak = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
        role = "master" if current == pid else "scheduler" if b"node.jobs" in words else "worker"
        found.append((current, role, peak))
    return found


def tree_peak_kib(pid: int) -> int:
    """The largest peak resident size (VmHWM) of ``pid`` and its descendants, in KiB."""
    return max((peak for _, _, peak in tree_peaks(pid)), default=0)
