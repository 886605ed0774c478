"""GroupCommit: items from many concurrent callers written together (one transaction, one
fsync, per batch) instead of one transaction each.

    batcher = GroupCommit(write_many, max_items=2000)
    result = await batcher.submit(item)     # each caller awaits its own item's result
    results = await batcher.submit_many(items)  # one caller's items, results or exceptions

``write_many(items)`` gets the items submitted while the previous write was in flight (at most
``max_items``, in submission order) and returns one entry per item, in order: the item's result,
or an exception instance that is raised to that item's caller alone. An exception raised by
``write_many`` itself (the database is down) goes to every caller of that batch. With nothing in
flight an item is written at once (a batch of one): waiting for company would only add latency.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write_many: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_items: int = 2000,
        writers: int = 1,
    ) -> None:
        if max_items < 1 or writers < 1:
            raise ValueError(f"max_items ({max_items}) and writers ({writers}) must be at least 1")
        self._write_many = write_many
        self._max_items = max_items
        self._writers = writers
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0  # written so far (for tests and logs)
        self.items = 0
        self.largest = 0

    async def submit(self, item: T) -> R:
        """Write ``item`` with whatever else is waiting; its result (or its exception)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start()
        return await future

    async def submit_many(self, items: Sequence[T]) -> list[R | BaseException]:
        """``submit`` for each of ``items``, queued at once so that they share batches (one
        caller's import written in one transaction, not its first item alone); each item's
        result or exception, in order."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        self._waiting.extend(zip(items, futures, strict=True))
        self._start()
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def wait_idle(self) -> None:
        """Until nothing is waiting or being written."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _start(self) -> None:
        while self._waiting and len(self._running) < self._writers:
            n = min(len(self._waiting), self._max_items)
            batch = [self._waiting.popleft() for _ in range(n)]
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start()

    async def _write(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        self.largest = max(self.largest, len(batch))
        try:
            results = await self._write_many([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"write_many returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller gave up waiting
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
