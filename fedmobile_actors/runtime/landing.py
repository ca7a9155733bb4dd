"""Results of concurrent training calls merged into one stream, in the order they land.

Why one helper: the Ray pool (one streaming call per host) and the pools' default stateful path
(one chain of calls per phone) both start several producers and hand the round each ``(position,
encoded update)`` as soon as it arrives, with a producer's failure raised where the round reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

#: A producer's way to hand over one result: (position in the step, encoded update).
Land = Callable[[int, bytes], None]


async def as_landed(
    count: int, producers: Iterable[Callable[[Land], Awaitable[None]]]
) -> AsyncIterator[tuple[int, bytes]]:
    """Start every producer (in the given order) and yield the ``count`` results they land, as
    they land; the first producer error is raised here, as ``asyncio.gather`` would."""
    queue: asyncio.Queue[tuple[int, bytes] | BaseException] = asyncio.Queue()

    def land(position: int, blob: bytes) -> None:
        queue.put_nowait((position, blob))

    async def run(producer: Callable[[Land], Awaitable[None]]) -> None:
        try:
            await producer(land)
        except Exception as err:  # raised where the round awaits its results
            queue.put_nowait(err)

    running = [asyncio.ensure_future(run(p)) for p in producers]
    for _ in range(count):
        item = await queue.get()
        if isinstance(item, BaseException):
            raise item
        yield item
    await asyncio.gather(*running)
