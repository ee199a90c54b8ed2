"""The result spool: results S3 did not take, kept on local disk until it does (bounded; oldest out first)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StoredObject:
    """One object to write: key, bytes and content type."""

    key: str
    body: bytes
    content_type: str


class ResultSpool:
    """One folder per result (its objects plus a manifest), renamed into place so a crash never leaves half."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.dropped = 0  # results pushed out by newer ones while full: promised, then lost (counted)
        self._lock = threading.Lock()
        self._seq = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        # Leftovers of an interrupted add() (never renamed into place) are not results.
        for stale in self.directory.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def add(self, request_id: str, objects: list[StoredObject]) -> None:
        """Keep one result's objects (in write order); drops the oldest results when over the byte bound."""
        with self._lock:
            self._seq += 1
            name = f"{time.time_ns():020d}-{self._seq:06d}-{request_id}"
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.directory))
        manifest = []
        for index, item in enumerate(objects):
            (staging / f"{index:02d}").write_bytes(item.body)
            manifest.append({"key": item.key, "content_type": item.content_type, "file": f"{index:02d}"})
        (staging / _MANIFEST).write_text(json.dumps({"request_id": request_id, "objects": manifest}))
        os.replace(staging, self.directory / name)
        self._trim(keep=name)

    def entries(self) -> list[Path]:
        """Spooled results, oldest first."""
        return sorted(p for p in self.directory.iterdir() if not p.name.startswith(".") and p.is_dir())

    def load(self, entry: Path) -> list[StoredObject]:
        """The objects of one spooled result, in write order."""
        manifest = json.loads((entry / _MANIFEST).read_text())
        return [
            StoredObject(item["key"], (entry / item["file"]).read_bytes(), item["content_type"])
            for item in manifest["objects"]
        ]

    def remove(self, entry: Path) -> None:
        """Forget one result (it was written)."""
        shutil.rmtree(entry, ignore_errors=True)

    def size_bytes(self) -> int:
        """Bytes held on disk."""
        return sum(f.stat().st_size for entry in self.entries() for f in entry.iterdir() if f.is_file())

    def has_room(self) -> bool:
        """A result of the usual size can still be kept without pushing an older one out."""
        entries = self.entries()
        total = self.size_bytes()
        usual = total / len(entries) if entries else 0
        return total + usual <= self.max_bytes

    def _trim(self, keep: str) -> None:
        with self._lock:
            entries = self.entries()
            total = self.size_bytes()
            for entry in entries:
                if total <= self.max_bytes or entry.name == keep:
                    break
                freed = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
                log.error("result spool full: dropping the oldest result %s", entry.name)
                self.remove(entry)
                self.dropped += 1
                total -= freed
