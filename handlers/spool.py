"""A local durable spool: events acknowledged while the database was down, replayed when it is back.

One JSON line per event, appended under an exclusive ``flock`` and ``fsync``-ed before the caller answers
the platform; :meth:`Spool.replay` takes the same lock, hands each line to a callback (which records it
in the inbox; a duplicate is fine) and rewrites the file with the lines not yet replayed. Processes of one
host share the file (same data directory); each host replays its own.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (raises when the disk refuses: the caller must not answer 200)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def replay(self, handle: Callable[[dict[str, Any]], None]) -> int:
        """Pass every spooled record to ``handle`` in order; stops at the first failure (kept for next
        time). Returns how many were replayed."""
        if not self.pending():
            return 0
        done = 0
        with open(self.path, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                lines = f.read().splitlines()
                for line in lines:
                    if not line.strip():
                        done += 1
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError:  # a torn last line of a crash during append: never acknowledged
                        log.warning("spool %s: an unreadable line dropped", self.path.name)
                        done += 1
                        continue
                    try:
                        handle(record)
                    except Exception as exc:
                        log.warning("spool %s: replay stopped (%s); %s left", self.path.name, type(exc).__name__,
                                    len(lines) - done)
                        break
                    done += 1
                rest = lines[done:]
                f.seek(0)
                f.truncate()
                if rest:
                    f.write("\n".join(rest) + "\n")
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        replayed = sum(1 for line in lines[:done] if line.strip())
        if replayed:
            log.info("spool %s: %s events replayed into the inbox", self.path.name, replayed)
        return replayed


__all__ = ["Spool"]
