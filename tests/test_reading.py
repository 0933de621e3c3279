"""A viewer's reader is polled on a worker thread while the UI thread may close it: never both at once."""

from __future__ import annotations

import threading

from cockpit.core.reading import RunReader
from engine.spec import RunSpec
from engine.store import Run


def test_closing_while_a_poll_thread_reads_is_safe(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    run.add_metrics((s, s / 10, name, float(s)) for s in range(2000) for name in ("train_loss", "lr", "grad_norm"))
    for attempt in range(20):
        reader = RunReader(Run(run.path))
        readings, stop, first = [], threading.Event(), threading.Event()

        def poll():
            while not stop.is_set():
                readings.append(reader.read())
                first.set()

        t = threading.Thread(target=poll)
        t.start()
        assert first.wait(30)  # a read has completed; the next is in flight (a wait, not a spin for the GIL)
        reader.close()  # before the lock, this closed SQLite under the reader's feet (a segfault)
        stop.set()
        t.join(10)
        assert not t.is_alive()
        assert readings[0].error == "" and readings[0].step == 1999
        assert readings[-1].error == "the viewer closed this run"
