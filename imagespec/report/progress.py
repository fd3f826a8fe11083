"""Live progress of an apply: one line per image with its stage and elapsed time."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Optional

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

FINISHED = ("done", "failed", "interrupted")


class ApplyProgress:
    """A rich progress display fed by the worker threads (thread-safe).

    The display starts with the first image's first stage, not on entry: apply
    asks for confirmation in between, and a live display would hide the prompt."""

    def __init__(self, console: Console, enabled: bool = True):
        self.enabled = enabled and console.is_terminal
        self.console = console
        self.lock = threading.Lock()
        self.tasks: dict[str, TaskID] = {}
        self.started = False
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("[cyan]{task.fields[stage]}"),
            TimeElapsedColumn(),
            console=console,
        )

    def __enter__(self) -> ApplyProgress:
        return self

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self.started:
            self.progress.stop()

    def update(self, image: str, stage: str) -> None:
        """Called by a worker when an image enters a stage or finishes (done/failed)."""
        with self.lock:
            if not self.enabled:
                if stage in FINISHED:
                    self.console.print(f"{image}: {stage}", highlight=False)
                return
            if not self.started:
                self.started = True
                self.progress.start()
            if image not in self.tasks:
                self.tasks[image] = self.progress.add_task(image, total=None, stage=stage)
            finished = stage in FINISHED
            self.progress.update(
                self.tasks[image],
                stage=stage,
                completed=1 if finished else None,
                total=1 if finished else None,
            )
            if finished:
                self.progress.stop_task(self.tasks[image])
