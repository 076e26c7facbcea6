"""The worker's producer: its messages linger while it catches up, and a flush sends them
at once (before a store write, a commit or a hand-over), lingering or not."""

import asyncio
import uuid

import faust
import pytest

from streams.agents import producer as producing
from streams.agents.consumer import Transport
from streams.agents.producer import Producer


def test_a_catching_up_worker_lingers_and_a_flush_does_not_wait(
    bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(producing, "CATCH_UP_LINGER", 30.0)

    async def run() -> None:
        app = faust.App(f"muster-producer-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}")
        made = Transport(app.conf.broker_producer, app).create_producer(
            loop=asyncio.get_running_loop()
        )
        assert isinstance(made, Producer)
        await made.start()
        try:
            topic = f"producer-{uuid.uuid4().hex[:8]}"
            await made.create_topic(topic, 1, 1)
            made.pace(catching_up=True)
            lingering = await made.send(topic, b"k", b"v", None, None, None)
            await asyncio.sleep(1.0)
            assert not lingering.done()  # waiting for others of its partition
            await asyncio.wait_for(made.flush(), 10)  # not the 30 s linger
            assert (await lingering).offset == 0

            made.pace(catching_up=False)
            prompt = await made.send(topic, b"k", b"w", None, None, None)
            assert (await asyncio.wait_for(prompt, 10)).offset == 1  # after LINGER
        finally:
            await made.stop()

    asyncio.run(run())
