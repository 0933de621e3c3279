"""The worker process: owns one run, given only its run dir.

    python -m engine.worker RUN_DIR

Started by `spawn()` in its own process session (so it survives the terminal that launched it),
with its output going to RUN_DIR/worker.log. It trains, obeys the commands table, writes a final
checkpoint and records its end state: finished, stopped, or failed with the error text.
SIGINT/SIGTERM ask for a clean stop at the next step boundary; a second signal exits at once.
torch is imported only inside `main`, so that clients can import this module cheaply.

Data-parallel runs (`spawn(run, nproc_per_node=N, nnodes=M, rdzv_endpoint=...)`) start
`python -m torch.distributed.run ... -m engine.worker RUN_DIR` instead: the launcher's pid is the
one in meta (crash detection watches it) and torchrun forwards SIGTERM/SIGINT to every rank; the
ranks agree on the stop at the next window boundary and the store rank writes the final
checkpoint. On every node the worker of local rank 0 keeps that node's meta (state, pids); the
store rank (see engine/distributed.py) owns the run store and sends the spec, the resume flag and
the checkpoint to the other ranks, so a node other than the store's needs no copy of them.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .store import Run

# errors the user fixes in the spec or the environment: reported as plain messages, CLI exit 2
USAGE_ERRORS = {"DataError", "DeviceError", "OptimError", "SpecError", "CheckpointError", "DistributedError"}
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
HEAD_ENV = "COCKPIT_HEAD"  # "1" on the node whose cockpit owns the run store (set by spawn)
SYNC_BN_ENV = "COCKPIT_SYNC_BN"  # "1": convert BatchNorm to SyncBatchNorm (also meta key sync_bn)


def is_local_host(host: str) -> bool:
    """Whether `host` (from --rdzv-endpoint) names this machine."""
    host = host.strip("[]")
    if host in ("localhost", "", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    try:
        mine = set(socket.gethostbyname_ex(socket.gethostname())[2])
        theirs = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(mine & theirs) or any(ipaddress.ip_address(a).is_loopback for a in theirs if ":" not in a)


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """HOST:PORT -> (host, port); ValueError with a plain message when it is not that."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--rdzv-endpoint must be HOST:PORT (e.g. node0:29500), got {endpoint!r}")
    return host, int(port)


def launch_command(run_path: Path, nproc_per_node: int = 1, nnodes: int = 1, rdzv_endpoint: str = "") -> list[str]:
    """The command line that runs the worker: itself, or torchrun around it for several processes."""
    worker = ["-m", "engine.worker", str(run_path)]
    if nproc_per_node <= 1 and nnodes <= 1:
        return [sys.executable, *worker]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}"]
    if nnodes > 1 or rdzv_endpoint:
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    else:
        cmd += ["--standalone"]
    return cmd + worker


def spawn(run: Run, extra_env: dict[str, str] | None = None, nproc_per_node: int | None = None,
          nnodes: int | None = None, rdzv_endpoint: str | None = None) -> subprocess.Popen:
    """Start the worker for `run` in a new session; its pid is recorded in the run's meta.

    With nproc_per_node > 1 or nnodes > 1 the worker runs under torchrun and the pid is torchrun's.
    Left out (None), the layout is the one in meta (a resumed run keeps its processes), else 1."""
    meta = run.meta()
    nproc = int(nproc_per_node or meta.get("nproc_per_node") or 1)
    nodes = int(nnodes or meta.get("nnodes") or 1)
    endpoint = rdzv_endpoint if rdzv_endpoint is not None else str(meta.get("rdzv_endpoint") or "")
    if nodes > 1 and not endpoint:
        raise ValueError("several nodes need --rdzv-endpoint HOST:PORT (the same on every node)")
    log = open(run.log_path, "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra_env or {}))
    # keep freed batch-sized buffers in the heap: with glibc's defaults every ~3 MB activation
    # is a fresh mmap that page-faults anew, about half the CPU time of a CPU step (bench/augment.py)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(32 << 20))
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(1 << 30))
    # the engine package must be importable by the child even when run from a source checkout
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    distributed = nproc > 1 or nodes > 1
    if distributed:
        # the store is the one on the node that hosts the rendezvous endpoint (COCKPIT_HEAD=0/1 overrides)
        if env.get(HEAD_ENV) in ("0", "1"):
            head = env[HEAD_ENV] == "1"
        else:
            head = nodes == 1 or not endpoint or is_local_host(split_endpoint(endpoint)[0])
        env[HEAD_ENV] = "1" if head else "0"
        run.set_meta(nproc_per_node=nproc, nnodes=nodes, rdzv_endpoint=endpoint, world_size=nproc * nodes,
                     launcher="torchrun", head=head)
    proc = subprocess.Popen(
        launch_command(run.path, nproc, nodes, endpoint),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, env=env, close_fds=True,
    )
    log.close()
    run.set_meta(pid=proc.pid)
    return proc


def signal_ranks(run: Run, sig: int = signal.SIGTERM, times: int = 2) -> None:
    """Signal this host's ranks of a torchrun run directly (twice: each exits at once); no-op otherwise."""
    meta = run.meta()
    pids = meta.get("rank_pids") or {}
    host = socket.gethostname()
    for _ in range(times):
        for pid_host in pids.values() if isinstance(pids, dict) else ():
            pid, where = pid_host
            if where != host:
                continue
            try:
                os.kill(int(pid), sig)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m engine.worker RUN_DIR", file=sys.stderr)
        return 2
    from .distributed import env_context

    ctx = env_context()
    run = Run(Path(argv[0]))
    # the process that keeps this node's meta: the worker itself, or local rank 0 under torchrun
    # (the launcher's pid stays in meta: it is the one crash detection watches)
    writer = run if ctx.local_rank == 0 else None
    if ctx.active:
        writer and writer.set_meta(state="running", started=time.time())
    else:
        run.set_meta(pid=os.getpid(), state="running", started=time.time())
    trainer = None
    signals_seen: list[int] = []

    def on_signal(signum: int, _frame) -> None:
        signals_seen.append(signum)
        name = signal.Signals(signum).name
        if len(signals_seen) > 1:
            try:
                if writer is not None:
                    writer.set_meta(state="stopped", ended=time.time(), error=f"stopped at once by a second {name}")
            finally:
                os._exit(EXIT_FOR_SIGNAL.get(signum, 1))
        if trainer is not None:
            trainer.stop_request = ("stopped", f"{name} received")
        else:
            raise KeyboardInterrupt(name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    prefix = f"[rank {ctx.rank}] " if ctx.active and ctx.rank else ""

    def log(msg: str) -> None:
        if writer is not None:  # under torchrun: one voice per node
            print(f"{time.strftime('%H:%M:%S')} {prefix}{msg}", flush=True)

    try:
        import torch

        from .train import Trainer

        if ctx.active:
            spec, resume, sync_bn = _join(run, ctx, writer, log)
        else:
            run.set_meta(torch_version=torch.__version__)
            spec, resume, sync_bn = run.spec(), bool(run.meta().get("resume")), False
        owner = run if ctx.is_store else None  # under torchrun only the store rank writes the store
        trainer = Trainer(spec, owner, log=log, dist=ctx, sync_bn=sync_bn)
        if resume:
            trainer.resume()
            if owner:
                owner.set_meta(resume=False)
        state = trainer.fit()
        if state == "finished" and owner:
            from .passes import run_pass

            for kind, on in (("calibrate", spec.evaluate.calibrate), ("tta", spec.evaluate.tta)):
                if on:
                    run_pass(run, kind, trainer=trainer, checkpoint="best", log=log)
        if writer is not None:
            writer.set_meta(state=state, ended=time.time())
            _refuse_leftover_commands(writer, state)
        if ctx.active:  # nobody leaves before the store rank has written everything
            from .distributed import shutdown

            ctx.barrier()
            shutdown(ctx)
        if signals_seen:
            return EXIT_FOR_SIGNAL.get(signals_seen[0], 1)
        return 0
    except KeyboardInterrupt:
        if writer is not None:
            writer.set_meta(state="stopped", ended=time.time(), error="stopped before training began")
        return EXIT_FOR_SIGNAL.get(signals_seen[0], 130) if signals_seen else 130
    except Exception as exc:
        if prefix:
            print(f"{prefix}failed:", file=sys.stderr, flush=True)
        traceback.print_exc()
        usage = type(exc).__name__ in USAGE_ERRORS
        message = str(exc) if usage else f"{type(exc).__name__}: {exc}"
        if writer is not None:
            writer.set_meta(state="failed", ended=time.time(), error=message, error_kind="usage" if usage else "crash")
            writer.add_event("failed", message, level="error", step=trainer.step if trainer else 0)
        return 1


def _refuse_leftover_commands(run: Run, state: str) -> None:
    """Commands that arrived after the loop's last poll get an answer instead of waiting forever."""
    for pending in run.pending_commands():
        kind = pending.kind
        run.ack_command(pending.id, "failed", f"the run {state} before {kind} could be handled; use `cockpit {kind} RUN` "
                        "on the finished run" if kind in ("calibrate", "tta", "swa") else f"the run {state} first")


def _join(run: Run, ctx, writer: Run | None, log) -> tuple:
    """Under torchrun: join the process group, learn the store rank, and take the spec, the resume
    flag and the SyncBatchNorm choice from it (the store's spec is the one that runs everywhere)."""
    import torch

    from . import distributed as D
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
    sys.exit(main())
