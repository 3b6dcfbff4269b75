"""Micro-batching: concurrent requests to one revision share one predict call.

A forest's predict costs nearly the same for 1 row as for 100, so under load the
batcher turns N waiting requests into one call. It is adaptive: while one batch runs in
the revision's thread, new requests queue and form the next batch, so an idle endpoint
adds no waiting; `max_wait` optionally holds the first request a moment longer to let
others join. A batch that raises is retried request by request, so one bad request
fails alone."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class _Item:
    data: Any
    rows: int
    future: asyncio.Future


def row_count(data: Any) -> int:
    return len(data)


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[Any], Any],
        *,
        name: str = "model",
        max_batch_rows: int = 1024,
        max_wait: float = 0.0,
        batchable: bool = True,
        inline: bool = False,
    ) -> None:
        self.predict = predict
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait
        self.batchable = batchable
        # A sub-millisecond predict runs on the event loop itself: handing it to a
        # thread costs more (GIL hand-offs) than it saves.
        self.inline = inline
        self.batches = 0
        self._queue: list[_Item] = []
        self._rows = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        # One thread per revision: its batches run in order, off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{name}")

    async def submit(self, data: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append(_Item(data, row_count(data), future))
        self._rows += self._queue[-1].rows
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        self._wakeup.set()
        return await future

    def close(self) -> None:
        """Stop after the queued requests are answered (a revision being swapped out)."""
        self._closed = True
        self._wakeup.set()

    async def _run(self) -> None:
        # The executor's thread ends by itself once the batcher is garbage collected.
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._queue and self._rows < self.max_batch_rows:
                await asyncio.sleep(self.max_wait)
            while self._queue:
                await self._run_batch(self._take())
            if self._closed:
                return

    def _take(self) -> list[_Item]:
        if not self.batchable:
            item = self._queue.pop(0)
            self._rows -= item.rows
            return [item]
        taken, rows = [], 0
        while self._queue and (not taken or rows + self._queue[0].rows <= self.max_batch_rows):
            item = self._queue.pop(0)
            taken.append(item)
            rows += item.rows
        self._rows -= rows
        return taken

    async def _run_batch(self, items: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        self.batches += 1
        try:
            batch = _concat([i.data for i in items])
            if self.inline:
                result = self.predict(batch)
            else:
                result = await loop.run_in_executor(self._executor, self.predict, batch)
            parts = _split(result, [i.rows for i in items])
        except Exception as exc:
            if len(items) == 1:
                _resolve(items[0].future, error=exc)
                return
            for item in items:
                await self._run_batch([item])
            return
        for item, part in zip(items, parts, strict=True):
            _resolve(item.future, result=part)


def _resolve(future: asyncio.Future, *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _concat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return pd.concat(parts, ignore_index=True)


def _split(result: Any, sizes: list[int]) -> list[Any]:
    if len(sizes) == 1:
        return [result]
    if len(result) != sum(sizes):
        raise ValueError("the model returned a different number of rows than it was given")
    parts, start = [], 0
    for size in sizes:
        end = start + size
        parts.append(result.iloc[start:end] if isinstance(result, (pd.DataFrame, pd.Series)) else result[start:end])
        start = end
    return parts
