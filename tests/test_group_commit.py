"""Group commit: concurrent messages share transactions, every answer after its commit."""
import asyncio

from sqlalchemy import func, select

from adapters.sql_store import SqlStore
from adapters.sql_tables import messages
from engine.channel import Channel, Inbound, Route
from engine.group_commit import GroupCommitter
from engine.migrations import upgrade
from tests.messages import oru


def test_concurrent_messages_share_transactions(store: SqlStore) -> None:
    committer = GroupCommitter(Channel(store), writers=2)
    committer.start()

    async def send_all() -> list:
        return await asyncio.gather(*(
            committer.submit(Inbound(oru(f"GC-{n}", f"P{n % 7}", "20240101100000", [("heart_rate", 70 + n % 90)]),
                                     Route()))
            for n in range(300)))

    receipts = asyncio.run(send_all())
    committer.stop()
    assert all(r.ack_codes == ["AA"] and r.message_id for r in receipts)
    assert committer.messages == 300 and committer.batches < 300
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 300


def test_stop_finishes_what_is_queued(sqlite_url: str) -> None:
    store = SqlStore.from_url(sqlite_url)
    upgrade(store.engine)
    committer = GroupCommitter(Channel(store))
    committer.start()

    async def submit_then_stop() -> list:
        tasks = [asyncio.ensure_future(committer.submit(Inbound(oru(f"S-{n}", "P", "20240101100000",
                                                                    [("spo2", 97)]), Route()))) for n in range(20)]
        await asyncio.sleep(0)
        await asyncio.get_running_loop().run_in_executor(None, committer.stop)
        return await asyncio.gather(*tasks)

    receipts = asyncio.run(submit_then_stop())
    assert [r.ack_codes for r in receipts] == [["AA"]] * 20
    store.close()
