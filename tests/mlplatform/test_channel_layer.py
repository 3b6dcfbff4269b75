"""The embedded layer delivers a message published from another thread (the Celery
worker thread, the serving plane) to a consumer waiting on the server's loop."""

import asyncio
import threading

from asgiref.sync import async_to_sync

from mlplatform.channel_layer import ThreadSafeInMemoryChannelLayer


def test_a_message_published_from_another_thread_wakes_the_waiting_receiver():
    # Given a receiver waiting on the server's loop, with nothing else that would wake
    # that loop: no timer, no socket
    layer = ThreadSafeInMemoryChannelLayer()
    waiting, arrived = threading.Event(), threading.Event()
    received: list[dict] = []
    loop = asyncio.new_event_loop()

    async def receive_one():
        channel = await layer.new_channel()
        await layer.group_add("job.1", channel)
        loop.call_soon(waiting.set)
        received.append(await layer.receive(channel))
        arrived.set()

    loop.call_soon(lambda: loop.create_task(receive_one()))
    server = threading.Thread(target=loop.run_forever, daemon=True)
    server.start()
    assert waiting.wait(5)

    try:
        # When another thread publishes to the group
        async_to_sync(layer.group_send)("job.1", {"type": "event.message", "event": "job.status"})

        # Then the receiver has it (Channels' own in-memory layer left it in the queue
        # until something else woke the loop: here never)
        assert arrived.wait(5), "the published message did not wake the receiver"
        assert received[0]["event"] == "job.status"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        server.join(5)
