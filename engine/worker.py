"""The worker process: owns one run, given only its run dir.

    python -m engine.worker RUN_DIR

Started by `spawn()` in its own process session (so it survives the terminal that launched it),
with its output going to RUN_DIR/worker.log. It trains, obeys the commands table, writes a final
checkpoint and records its end state: finished, stopped, or failed with the error text.
SIGINT/SIGTERM ask for a clean stop at the next step boundary; a second signal exits at once.
torch is imported only inside `main`, so that clients can import this module cheaply.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .store import Run

# errors the user fixes in the spec or the environment: reported as plain messages, CLI exit 2
USAGE_ERRORS = {"DataError", "DeviceError", "OptimError", "SpecError", "CheckpointError"}
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


def spawn(run: Run, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the worker for `run` in a new session; its pid is recorded in the run's meta."""
    log = open(run.log_path, "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra_env or {}))
    # the engine package must be importable by the child even when run from a source checkout
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.worker", str(run.path)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, env=env, close_fds=True,
    )
    log.close()
    run.set_meta(pid=proc.pid)
    return proc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m engine.worker RUN_DIR", file=sys.stderr)
        return 2
    run = Run(Path(argv[0]))
    run.set_meta(pid=os.getpid(), state="running", started=time.time())
    trainer = None
    signals_seen: list[int] = []

    def on_signal(signum: int, _frame) -> None:
        signals_seen.append(signum)
        name = signal.Signals(signum).name
        if len(signals_seen) > 1:
            try:
                run.set_meta(state="stopped", ended=time.time(), error=f"stopped at once by a second {name}")
            finally:
                os._exit(EXIT_FOR_SIGNAL.get(signum, 1))
        if trainer is not None:
            trainer.stop_request = ("stopped", f"{name} received")
        else:
            raise KeyboardInterrupt(name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    try:
        import torch

        from .train import Trainer

        run.set_meta(torch_version=torch.__version__)
        spec = run.spec()
        trainer = Trainer(spec, run, log=log)
        if run.meta().get("resume"):
            trainer.resume()
            run.set_meta(resume=False)
        state = trainer.fit()
        if state == "finished":
            from .passes import run_pass

            for kind, on in (("calibrate", spec.evaluate.calibrate), ("tta", spec.evaluate.tta)):
                if on:
                    run_pass(run, kind, trainer=trainer, checkpoint="best", log=log)
        run.set_meta(state=state, ended=time.time())
        if signals_seen:
            return EXIT_FOR_SIGNAL.get(signals_seen[0], 1)
        return 0
    except KeyboardInterrupt:
        run.set_meta(state="stopped", ended=time.time(), error="stopped before training began")
        return EXIT_FOR_SIGNAL.get(signals_seen[0], 130) if signals_seen else 130
    except Exception as exc:
        traceback.print_exc()
        usage = type(exc).__name__ in USAGE_ERRORS
        message = str(exc) if usage else f"{type(exc).__name__}: {exc}"
        run.set_meta(state="failed", ended=time.time(), error=message, error_kind="usage" if usage else "crash")
        run.add_event("failed", message, level="error", step=trainer.step if trainer else 0)
        return 1


if __name__ == "__main__":
    sys.exit(main())
