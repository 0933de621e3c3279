"""Starting the worker process, torch-free: the command line, its environment, its signals.

`spawn(run)` starts `python -m engine.worker RUN_DIR` in its own process session (so it survives
the terminal that launched it), or torchrun around it for a data-parallel run, with its output in
RUN_DIR/worker.log and its pid in the run's meta. It hands the worker the run's claim (one worker
per run: engine/store/claim.py). The cockpit imports this module, never the worker itself; the
environment variables the worker reads are named here.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .store import Run, RunClaim, process_start
from .store.claim import CLAIM_FD_ENV

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
    """The command line that runs the worker: itself, or torchrun around it for several processes.
    `-P` (and PYTHONSAFEPATH in `spawn`): the launch directory is never on the import path, so a
    `torch.py` or `sqlite3.py` lying where the user stands cannot run inside the worker."""
    worker = ["-m", "engine.worker", str(run_path)]
    if nproc_per_node <= 1 and nnodes <= 1:
        return [sys.executable, "-P", *worker]
    cmd = [sys.executable, "-P", "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}"]
    if nnodes > 1 or rdzv_endpoint:
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    else:
        cmd += ["--standalone"]
    return cmd + worker


def spawn(run: Run, extra_env: dict[str, str] | None = None, nproc_per_node: int | None = None,
          nnodes: int | None = None, rdzv_endpoint: str | None = None,
          claim: RunClaim | None = None) -> subprocess.Popen:
    """Start the worker for `run` in a new session; its pid (and start token) is recorded in meta.

    The run's claim passes to the worker: `claim` when the caller took it to check and mark the run
    first (a resume), else it is taken here (ClaimHeld, a StoreError, when another live process has
    it). Either way this process's copy is closed on return: the worker holds the claim alone.
    With nproc_per_node > 1 or nnodes > 1 the worker runs under torchrun and the pid is torchrun's.
    Left out (None), the layout is the one in meta (a resumed run keeps its processes), else 1."""
    claim = claim or RunClaim.take(run.path)
    try:
        return _spawn(run, claim, extra_env, nproc_per_node, nnodes, rdzv_endpoint)
    finally:
        claim.release()


def _spawn(run: Run, claim: RunClaim, extra_env: dict[str, str] | None, nproc_per_node: int | None,
           nnodes: int | None, rdzv_endpoint: str | None) -> subprocess.Popen:
    meta = run.meta()
    nproc = int(nproc_per_node or meta.get("nproc_per_node") or 1)
    nodes = int(nnodes or meta.get("nnodes") or 1)
    endpoint = rdzv_endpoint if rdzv_endpoint is not None else str(meta.get("rdzv_endpoint") or "")
    if nodes > 1 and not endpoint:
        raise ValueError("several nodes need --rdzv-endpoint HOST:PORT (the same on every node)")
    log = open(run.log_path, "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra_env or {}))
    env["PYTHONSAFEPATH"] = "1"  # torchrun's ranks too: never import from the launch directory
    env[CLAIM_FD_ENV] = str(claim.fd)  # the worker (or torchrun) inherits the locked descriptor
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
        start_new_session=True, env=env, close_fds=True, pass_fds=(claim.fd,),
    )
    log.close()
    claim.record(proc.pid)
    try:
        run.set_meta(pid=proc.pid, pid_start=process_start(proc.pid), heartbeat=time.time())  # alive as of now
    except BaseException:  # a worker nobody can find must not run on: stop it (a full disk, say)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc


def mark_for_resume(run: Run, why: str) -> None:
    """Mark `run` to continue from its last checkpoint when its worker starts, logged as an event
    (`why`: who asked). The caller holds the run's claim; until its worker is spawned, this process
    is the run's recorded pid, so a listing meanwhile never reads the run as crashed."""
    state = run.state()
    run.set_meta(resume=True, state="created", error="", pid=os.getpid(), pid_start=process_start(os.getpid()),
                 heartbeat=time.time())
    run.add_event("resume_requested", f"{why} (was {state})", step=run.last_step())


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
