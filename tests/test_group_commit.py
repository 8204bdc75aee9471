"""Group commit: concurrent messages share transactions, every answer after its commit."""
import asyncio
import os
import signal

import pytest
from sqlalchemy import func, select

from adapters.sql_store import SqlStore
from adapters.sql_tables import messages
from engine import group_commit
from engine.channel import Channel, Inbound, Receipt, Route
from engine.group_commit import GroupCommitter, StoreUnavailable
from engine.migrations import upgrade
from tests.messages import oru


def test_concurrent_messages_share_transactions(store: SqlStore) -> None:
    committer = GroupCommitter(Channel(store), writers=2)

    async def send_all() -> list:
        await committer.start()
        receipts = await asyncio.gather(*(
            committer.submit(Inbound(oru(f"GC-{n}", f"P{n % 7}", "20240101100000", [("heart_rate", 70 + n % 90)]),
                                     Route()))
            for n in range(300)))
        await committer.stop()
        return receipts

    receipts = asyncio.run(send_all())
    assert all(r.ack_codes == ["AA"] and r.message_id for r in receipts)
    assert committer.messages == 300 and committer.batches < 300
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 300


def test_stop_finishes_what_is_queued(sqlite_url: str) -> None:
    store = SqlStore.from_url(sqlite_url)
    upgrade(store.engine)
    committer = GroupCommitter(Channel(store))

    async def submit_then_stop() -> list:
        await committer.start()
        tasks = [asyncio.ensure_future(committer.submit(Inbound(oru(f"S-{n}", "P", "20240101100000",
                                                                    [("spo2", 97)]), Route()))) for n in range(20)]
        await asyncio.sleep(0)
        await committer.stop()
        return await asyncio.gather(*tasks)

    receipts = asyncio.run(submit_then_stop())
    assert [r.ack_codes for r in receipts] == [["AA"]] * 20
    store.close()


def test_a_store_process_that_dies_is_replaced(store: SqlStore, monkeypatch) -> None:
    """What the dead process held fails (no ACK: the sender resends); a new process stores the rest,
    including what was submitted while there was none, and answers a resend of a stored message as before."""
    monkeypatch.setattr(group_commit, "RESTART_DELAY", 0.2)
    committer = GroupCommitter(Channel(store))
    route = Route()

    def message(n: int) -> Inbound:
        return Inbound(oru(f"K-{n}", "P", "20240101100000", [("spo2", 97)]), route)

    async def scenario() -> tuple[Receipt, Receipt, Receipt]:
        await committer.start()
        first = await committer.submit(message(1))
        pid = committer.store_process_id
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        while committer.store_process_id == pid:  # the end of its replies pipe tells the committer
            await asyncio.sleep(0.01)
        during = asyncio.ensure_future(committer.submit(message(2)))  # no store process right now
        again = await asyncio.wait_for(during, 30)
        resent = await committer.submit(message(1))
        await committer.stop()
        return first, again, resent

    first, again, resent = asyncio.run(scenario())
    assert committer.restarts == 1
    assert first.ack_codes == again.ack_codes == ["AA"]
    assert resent.duplicate and resent.message_id == first.message_id and resent.ack_codes == ["AA"]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 2


def test_submit_after_stop_is_refused(sqlite_url: str) -> None:
    store = SqlStore.from_url(sqlite_url)
    upgrade(store.engine)
    committer = GroupCommitter(Channel(store))

    async def scenario() -> None:
        await committer.start()
        await committer.stop()
        with pytest.raises(StoreUnavailable):
            await committer.submit(Inbound(oru("X-1", "P", "20240101100000", [("spo2", 97)]), Route()))

    asyncio.run(scenario())
    store.close()


def test_an_in_memory_database_cannot_be_shared_with_the_store_process() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        GroupCommitter(Channel(SqlStore.from_url("sqlite://")))


def test_stop_while_a_dead_store_process_waits_to_be_replaced(store: SqlStore) -> None:
    committer = GroupCommitter(Channel(store))

    async def scenario() -> None:
        await committer.start()
        pid = committer.store_process_id
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        while committer.store_process_id == pid:
            await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(committer.submit(Inbound(oru("G-1", "P", "20240101100000", [("spo2", 97)]),
                                                                 Route())))
        await asyncio.sleep(0)
        await committer.stop()  # before the replacement starts: none starts, the message is refused
        with pytest.raises(StoreUnavailable):
            await waiting
        await asyncio.sleep(group_commit.RESTART_DELAY + 0.2)
        assert committer.store_process_id is None

    asyncio.run(scenario())


def test_a_batch_holds_at_most_max_batch_messages(store: SqlStore) -> None:
    committer = GroupCommitter(Channel(store), max_batch=4)

    async def send_all() -> list:
        await committer.start()
        receipts = await asyncio.gather(*(  # submitted in one turn of the loop: one frame to the store process
            committer.submit(Inbound(oru(f"MB-{n}", f"P{n}", "20240101100000", [("spo2", 97)]), Route()))
            for n in range(10)))
        await committer.stop()
        return receipts

    receipts = asyncio.run(send_all())
    assert all(r.ack_codes == ["AA"] for r in receipts)
    assert committer.messages == 10 and committer.batches >= 3
