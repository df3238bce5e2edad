"""processors.engine.ModelGate: one model call at a time, live decodes before batch steps that have not started."""

from __future__ import annotations

import threading
import time

from processors.engine import ModelGate


def test_a_waiting_live_call_goes_before_waiting_batch_steps() -> None:
    gate = ModelGate()
    order: list[str] = []
    running = threading.Event()
    release = threading.Event()

    def batch_step(name: str) -> None:
        with gate.hold(live=False):
            order.append(name)
            if name == "batch-1":
                running.set()
                release.wait(5)

    def live_call() -> None:
        with gate.hold(live=True):
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

    def call(live: bool) -> None:
        nonlocal inside, most
        for _ in range(50):
            with gate.hold(live=live):
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=call, args=(n % 2 == 0,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 1
