"""The worker process: owns one run, given only its run dir.

    python -m engine.worker RUN_DIR

Started by `engine.launch.spawn()` in its own process session (so it survives the terminal that launched it),
with its output going to RUN_DIR/worker.log. It trains, obeys the commands table, writes a final
checkpoint and records its end state: finished, stopped, or failed with the error text.
SIGINT/SIGTERM ask for a clean stop at the next step boundary; a second signal exits at once.
torch is imported only inside `main`, so that clients can import this module cheaply.

Data-parallel runs (`spawn(run, nproc_per_node=N, nnodes=M, rdzv_endpoint=...)`) start
`python -m torch.distributed.run ... -m engine.worker RUN_DIR` instead: the launcher's pid is the
one in meta (crash detection watches it) and torchrun forwards SIGTERM/SIGINT to every rank; the
ranks agree on the stop at the next window boundary and the store rank writes the final
checkpoint. On every node the worker of local rank 0 keeps that node's meta (state, pids); the
store rank (see engine/runtime/distributed.py) owns the run store and sends the spec, the resume flag and
the checkpoint to the other ranks, so a node other than the store's needs no copy of them.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import sys
import time
import traceback
from pathlib import Path

from . import atomic_write
from .contracts import UsageError
from .launch import HEAD_ENV, SYNC_BN_ENV
from .phases import COMPILING, FIRST_STEP, IMPORTING, Phases
from .spec import SpecError
from .store import Heartbeat, Run, RunClaim, StoreError, process_start
from .store.claim import CLAIM_FD_ENV

EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _Signals:
    """SIGINT/SIGTERM: the first asks for a clean stop at the next step boundary (before training
    has begun: KeyboardInterrupt); a second records the run as stopped and exits at once."""

    def __init__(self, writer: Run | None):
        self.writer, self.trainer, self.seen = writer, None, []
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)

    def __call__(self, signum: int, _frame) -> None:
        self.seen.append(signum)
        name = signal.Signals(signum).name
        if len(self.seen) > 1:
            try:
                if self.writer is not None:
                    self.writer.set_meta(state="stopped", ended=time.time(), error=f"stopped at once by a second {name}")
            finally:
                os._exit(EXIT_FOR_SIGNAL.get(self.seen[0], 1))  # the first signal's code, whatever came second
        if self.trainer is None:
            raise KeyboardInterrupt(name)
        self.trainer.stop_request = ("stopped", f"{name} received")

    def exit_code(self, otherwise: int) -> int:
        return EXIT_FOR_SIGNAL.get(self.seen[0], 1) if self.seen else otherwise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m engine.worker RUN_DIR", file=sys.stderr)
        return 2
    run = Run(Path(argv[0]))
    try:
        _claim(run)  # before anything is written: a second worker on a run changes nothing
    except StoreError as exc:
        print(f"refused: {exc}", file=sys.stderr, flush=True)
        return 2
    keeper = os.environ.get("LOCAL_RANK", "0") == "0"  # this node's meta keeper
    if keeper:
        Heartbeat(run.path).start()  # for this process's lifetime: a frozen worker reads `not responding`
    # what happens before the first step, for the views
    phases = Phases(run if keeper else None)
    phases.set(IMPORTING)
    from .runtime.distributed import env_context

    ctx = env_context(head=os.environ.get(HEAD_ENV, "1") == "1")
    # the process that keeps this node's meta: the worker itself, or local rank 0 under torchrun
    # (the launcher's pid stays in meta: it is the one crash detection watches)
    writer = run if ctx.local_rank == 0 else None
    if ctx.active:
        writer and writer.set_meta(state="running", started=time.time())
    else:
        run.set_meta(pid=os.getpid(), pid_start=process_start(os.getpid()), state="running", started=time.time())
    signals = _Signals(writer)
    prefix = f"[rank {ctx.rank}] " if ctx.active and ctx.rank else ""

    def log(msg: str) -> None:
        if writer is not None:  # under torchrun: one voice per node
            print(f"{time.strftime('%H:%M:%S')} {prefix}{msg}", flush=True)

    try:
        signals.trainer = _trainer(run, ctx, writer, log, phases)
        state = _train(signals.trainer)
        if writer is not None:
            writer.set_meta(state=state, ended=time.time())
            _refuse_leftover_commands(writer, state)
        if ctx.active:  # nobody leaves before the store rank has written everything
            from .runtime.distributed import shutdown

            ctx.barrier()
            shutdown(ctx)
        return signals.exit_code(0)
    except KeyboardInterrupt:
        if writer is not None:
            writer.set_meta(state="stopped", ended=time.time(), error="stopped before training began")
        return signals.exit_code(130)
    except Exception as exc:
        _record_failure(writer, exc, prefix, signals.trainer.step if signals.trainer else 0)
        return 1


def _claim(run: Run) -> RunClaim | None:
    """Hold the run's claim for this process's lifetime: the one its launcher handed down, else
    taken here (StoreError when another live process holds it). A torchrun rank holds none:
    torchrun, the pid in meta, holds it for the whole job."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return None
    fd = os.environ.pop(CLAIM_FD_ENV, "")
    claim = (RunClaim.inherited(run.path, int(fd)) if fd.isdigit() else None) or RunClaim.take(run.path)
    claim.record(os.getpid())
    return claim


def _record_failure(writer: Run | None, exc: Exception, prefix: str, step: int) -> None:
    """The traceback to the log; the run failed with one message: the error alone where it is a
    usage error (the user fixes the input; the CLI exits 2), else its type and text (a crash)."""
    if prefix:
        print(f"{prefix}failed:", file=sys.stderr, flush=True)
    traceback.print_exc()
    usage = isinstance(exc, (UsageError, SpecError))
    message = str(exc) if usage else f"{type(exc).__name__}: {exc}"
    if writer is not None and not usage and atomic_write.disk_full(exc, writer.path):
        usage, message = True, f"the disk is full at {writer.path} ({exc}); free some space, then `cockpit resume`"
    if writer is not None:
        try:
            writer.set_meta(state="failed", ended=time.time(), error=message, error_kind="usage" if usage else "crash")
            writer.add_event("failed", message, level="error", step=step)
        except (OSError, sqlite3.Error) as again:  # a full disk: the reaper marks the run crashed later
            print(f"cannot record the failure in {writer.db_path}: {again}", file=sys.stderr)


def _trainer(run: Run, ctx, writer: Run | None, log, phases: Phases):
    """The run's trainer, built from the spec the store rank holds (continued from its checkpoint
    when the run is being resumed); finishing-pass commands run on its live model."""
    import torch

    from .train import Trainer

    if ctx.active:
        spec, resume, sync_bn = _join(run, ctx, writer, log)
    else:
        run.set_meta(torch_version=torch.__version__)
        spec, resume, sync_bn = run.spec(), bool(run.meta().get("resume")), False
    store = run if ctx.is_store else None  # under torchrun only the store rank writes the store
    trainer = Trainer(spec, store, log=log, dist=ctx, sync_bn=sync_bn, on_pass=live_pass, on_progress=phases.progress)
    if resume:
        trainer.resume()
        if store:
            store.set_meta(resume=False)
    phases.set(COMPILING if spec.train.compile else FIRST_STEP)
    return trainer


def _train(trainer) -> str:
    """Train to the end; a finished run then gets the passes its spec asks for, on best.pt."""
    state = trainer.fit()
    spec, store = trainer.spec, trainer.store
    if state == "finished" and store:
        from .contracts import TTA, Calibrate
        from .passes import PassError, run_pass

        for command, on in ((Calibrate(checkpoint="best"), spec.evaluate.calibrate), (TTA(checkpoint="best"), spec.evaluate.tta)):
            if on:
                try:
                    run_pass(store, command, live=trainer.parts, live_step=trainer.step, log=trainer.log)
                except PassError as exc:  # the training stands (a guide's temperature fit that diverged, say)
                    store.add_event(f"{command.kind}_failed", str(exc), level="error", step=trainer.step)
                    trainer.log(f"{command.kind} failed: {exc}")
    return state


def live_pass(trainer, command) -> str:
    """A finishing-pass command on the live model, between two steps; the reply is its summary."""
    from .passes import pass_summary, run_pass

    return pass_summary(run_pass(trainer.store, command, live=trainer.parts, live_step=trainer.step, log=trainer.log))


def _refuse_leftover_commands(run: Run, state: str) -> None:
    """Commands that arrived after the loop's last poll (or were taken and never applied: under DDP a
    stop can end the loop first) get an answer instead of waiting forever."""
    for cid, kind in run.taken_commands():
        run.ack_command(cid, "failed", f"the run {state} before {kind} was applied")
    for pending in run.pending_commands():
        kind = pending.kind
        run.ack_command(pending.id, "failed", f"the run {state} before {kind} could be handled; use `cockpit {kind} RUN` "
                        "on the finished run" if kind in ("calibrate", "tta", "swa") else f"the run {state} first")


def _join(run: Run, ctx, writer: Run | None, log) -> tuple:
    """Under torchrun: join the process group, learn the store rank, and take the spec, the resume
    flag and the SyncBatchNorm choice from it (the store's spec is the one that runs everywhere)."""
    import torch

    from .runtime import distributed as D
    from .spec import parse_spec_text

    local_spec = run.spec()
    device = D.device_for(local_spec.train.device, ctx)
    D.init(ctx, device)
    setup = None
    if ctx.is_store:
        meta = run.meta()
        setup = {"spec": (run.path / "spec.toml").read_text(encoding="utf-8"), "resume": bool(meta.get("resume")),
                 "sync_bn": bool(meta.get("sync_bn")) or os.environ.get(SYNC_BN_ENV, "") == "1",
                 "run_id": run.run_id, "host": socket.gethostname()}
    setup = ctx.broadcast_object(setup)
    spec = parse_spec_text(setup["spec"], f"{setup['host']}:{setup['run_id']}/spec.toml")
    node_ranks = [r["rank"] for r in ctx.ranks if r["node"] == ctx.node_rank]
    if ctx.is_store:
        run.set_meta(torch_version=torch.__version__, world_size=ctx.world_size, backend=ctx.backend,
                     store_rank=ctx.rank, sync_bn=setup["sync_bn"],
                     rank_pids={str(r["rank"]): [r["pid"], r["host"]] for r in ctx.ranks})
        log(f"data parallel: {ctx.world_size} processes ({ctx.backend}) on "
            f"{len({r['host'] for r in ctx.ranks})} host(s); this process (rank {ctx.rank}) owns the run store")
    elif writer is not None:
        where = f"run {setup['run_id']} on {setup['host']} (rank {ctx.store_rank})"
        writer.set_meta(torch_version=torch.__version__, world_size=ctx.world_size, backend=ctx.backend,
                        role="secondary", store=where,
                        rank_pids={str(r["rank"]): [r["pid"], r["host"]] for r in ctx.ranks if r["rank"] in node_ranks})
        writer.add_event("secondary_node", f"this node runs ranks {node_ranks[0]}..{node_ranks[-1]}; metrics, "
                         f"checkpoints and commands live in {where}")
    return spec, setup["resume"], setup["sync_bn"]


if __name__ == "__main__":
    exit_code = main()
    for late in (signal.SIGINT, signal.SIGTERM):  # the end is recorded: a signal now must not kill the
        signal.signal(late, signal.SIG_IGN)  # exit with its own code (Python's exit restores the defaults)
    from .runtime.distributed import env_context, exit_rank

    if env_context().active:  # a torchrun rank: never abort at exit in gloo's teardown (see exit_rank)
        exit_rank(exit_code)
    sys.exit(exit_code)
