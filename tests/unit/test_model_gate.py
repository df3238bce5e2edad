"""processors.engine.ModelGate: one model call at a time; live decodes, then short recordings' chunks, go before batch
steps that have not started."""

from __future__ import annotations

import threading
import time

from processors.engine import ModelGate, Rank


def test_a_waiting_live_call_goes_before_waiting_batch_steps() -> None:
    gate = ModelGate()
    order: list[str] = []
    running = threading.Event()
    release = threading.Event()

    def batch_step(name: str) -> None:
        with gate.hold(rank=Rank.BATCH):
            order.append(name)
            if name == "batch-1":
                running.set()
                release.wait(5)

    def live_call() -> None:
        with gate.hold(rank=Rank.LIVE):
            order.append("live")

    first = threading.Thread(target=batch_step, args=("batch-1",))
    first.start()
    assert running.wait(5)
    # While batch-1 holds the model: another batch step queues first, then a live call.
    second = threading.Thread(target=batch_step, args=("batch-2",))
    second.start()
    time.sleep(0.1)
    live = threading.Thread(target=live_call)
    live.start()
    time.sleep(0.1)
    assert order == ["batch-1"]  # a step in progress is never interrupted
    release.set()
    for thread in (first, second, live):
        thread.join(5)
    assert order == ["batch-1", "live", "batch-2"]


def test_calls_never_overlap() -> None:
    gate = ModelGate()
    inside = 0
    most = 0
    lock = threading.Lock()

    def call(rank: Rank) -> None:
        nonlocal inside, most
        for _ in range(50):
            with gate.hold(rank=rank):
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=call, args=(Rank(n % 3),)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 1


def test_waiting_calls_go_by_rank_then_arrival() -> None:
    gate = ModelGate()
    order: list[str] = []
    running = threading.Event()
    release = threading.Event()

    def call(name: str, rank: Rank) -> None:
        with gate.hold(rank=rank):
            order.append(name)
            if name == "batch-1":
                running.set()
                release.wait(5)

    first = threading.Thread(target=call, args=("batch-1", Rank.BATCH))
    first.start()
    assert running.wait(5)
    # While batch-1 holds the model: a batch step, a short recording's chunk, then a live decode queue up.
    waiting = [("batch-2", Rank.BATCH), ("priority", Rank.PRIORITY), ("live", Rank.LIVE)]
    threads = []
    for name, rank in waiting:
        threads.append(threading.Thread(target=call, args=(name, rank)))
        threads[-1].start()
        time.sleep(0.1)
    assert order == ["batch-1"]
    release.set()
    for thread in (first, *threads):
        thread.join(5)
    assert order == ["batch-1", "live", "priority", "batch-2"]
