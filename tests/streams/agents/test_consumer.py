"""The consumer's hand-over of a fetched record: the same race as Faust's, for less."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from streams.agents.consumer import Consumer, Transport


def consumer() -> Consumer:
    app = faust.App("muster-consumer-test", broker="kafka://127.0.0.1:9")  # never connects
    transport = Transport(app.conf.broker_consumer, app)

    async def nothing(*args: Any) -> None:
        return None

    made = transport.create_consumer(
        callback=nothing, on_partitions_revoked=nothing, on_partitions_assigned=nothing
    )
    assert isinstance(made, Consumer)
    return made


def handing(gate: asyncio.Event, log: list[str]) -> Callable[[str], Awaitable[str]]:
    async def hand(record: str) -> str:
        await gate.wait()  # a full stream buffer
        log.append(record)
        return record

    return hand


def test_a_record_is_handed_over_once_the_buffer_takes_it():
    async def run() -> None:
        c, gate, log = consumer(), asyncio.Event(), []
        hand = handing(gate, log)
        waiting = asyncio.ensure_future(c.wait_first(hand("r1"), c.suspend_flow.wait()))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the fetch loop waits on the buffer, as in Faust
        gate.set()
        result = await waiting
        assert (result.results, result.stopped, log) == (["r1"], False, ["r1"])

    asyncio.run(run())


def test_a_suspended_flow_drops_the_record_waiting_on_the_buffer_and_the_next():
    async def run() -> None:
        c, gate, log = consumer(), asyncio.Event(), []
        hand = handing(gate, log)
        waiting = asyncio.ensure_future(c.wait_first(hand("r1"), c.suspend_flow.wait()))
        await asyncio.sleep(0.05)
        c.suspend_flow.set()  # a rebalance: the buffers are cleared on resume
        assert (await asyncio.wait_for(waiting, 2)).results == []
        after = c.wait_first(hand("r2"), c.suspend_flow.wait())
        assert (await asyncio.wait_for(after, 2)).results == []
        gate.set()
        await asyncio.sleep(0.05)
        assert log == []  # neither reached the buffer
        c.suspend_flow.clear()  # flow resumed
        assert (await c.wait_first(hand("r3"), c.suspend_flow.wait())).results == ["r3"]
        assert log == ["r3"]

    asyncio.run(run())


def test_an_error_handing_over_is_raised_in_the_fetch_loop():
    async def run() -> None:
        c = consumer()

        async def broken() -> None:
            raise ValueError("no channel")

        try:
            await c.wait_first(broken(), c.suspend_flow.wait())
        except ValueError as exc:
            assert str(exc) == "no channel"
        else:
            raise AssertionError("the error was swallowed")

    asyncio.run(run())


def test_other_waits_are_fausts_own():
    async def run() -> None:
        c = consumer()
        other = asyncio.Event()
        other.set()
        result = await c.wait_first(asyncio.sleep(0, "slept"), other.wait())
        assert len(result.done) >= 1 and not result.stopped

    asyncio.run(run())
