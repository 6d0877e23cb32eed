"""The acks of one channel's deliveries, sent together.

The deliveries an executor finishes in the same moment (their runs recorded in one write) are
acknowledged with one `multiple` ack, up to the oldest delivery of the channel still open; the
ones finished past it are acknowledged each on its own, at once, so that a slow delivery never
holds back the others (nor the prefetch window they take). On a quorum queue every ack frame
is a command of the queue's log: one ack for many cut RabbitMQ's CPU per consumed message from
about 95 µs to 38 µs (8 KB messages, 16 to an ack).

A `multiple` ack settles only the deliveries still outstanding on the channel: one handed
back or rejected before (on its own, `settled_apart` here) is not acknowledged by it.
"""

import aiormq.abc

from hookflow_shared.batching import Batcher


class Acks:
    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self._open: dict[int, bool] = {}
        """The channel's deliveries not settled yet, by delivery tag in the order they came
        (the broker numbers them in order): whether each is finished."""
        self._batcher: Batcher[int, None] = Batcher(self._send, max_batch=4096, max_in_flight=1)

    def __len__(self) -> int:
        return len(self._open)

    def delivered(self, tag: int) -> None:
        """Every delivery of the channel, as it comes (before any of them is settled)."""
        self._open[tag] = False

    def settled_apart(self, tag: int) -> None:
        """A delivery handed back or rejected on its own."""
        self._open.pop(tag, None)

    async def ack(self, tag: int) -> None:
        """Returns once the ack of `tag` is written (with those finished meanwhile)."""
        await self._batcher.submit(tag)

    async def _send(self, tags: list[int]) -> None:
        for tag in tags:
            self._open[tag] = True
        upto = None
        for tag, finished in self._open.items():
            if not finished:
                break
            upto = tag
        if upto is not None:
            while True:  # the finished run of deliveries at the front, through `upto`
                tag = next(iter(self._open))
                del self._open[tag]
                if tag == upto:
                    break
            await self.channel.basic_ack(upto, multiple=True)
        for tag in tags:
            if upto is None or tag > upto:
                del self._open[tag]
                await self.channel.basic_ack(tag)
