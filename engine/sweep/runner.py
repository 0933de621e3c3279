"""Running a sweep's trials: each one an ordinary run, started through the launcher it is given.

One loop in one thread keeps up to `len(slots)` trials going (a slot is an environment and spec
overrides: one GPU each, or a share of the CPU threads). Optuna sees validation accuracy only, never
test accuracy: each epoch's goes to the trial (`trial.report`, what the pruner reads) and the last is
a finished trial's value (what a search's sampler optimizes). A trial whose run has no validation
split (allowed only with fixed configurations and no pruning) completes with no value; the table
reads test accuracy from the runs themselves (the trial keeps it as `test_acc`). When Optuna's
pruner says so, the run gets its own `Stop` command and the trial is recorded as pruned. A
run that fails or whose worker dies is recorded as such and the sweep goes on. Ctrl+C stops every
live run cleanly (again: at once) and records them as interrupted, to be continued by `resume`. A
trial queued again takes up its own run (`takeover`): adopted while its worker runs, recorded if it
ended on its own, continued from its checkpoint if it was stopped; never a second run of its seed.
Each run started is noted in the sweep's ledger (`ledger`), so the table can say when a run dir is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from ..contracts import Stop, UsageError
from ..spec import RunSpec, SpecError
from ..launch import mark_for_resume
from ..store import ClaimHeld, Run, RunClaim, StoreError
from .common import INTERRUPTED
from .config import trial_spec
from .ledger import Entry, record
from .secrets import redact
from .table import final_acc, final_val_acc
from .takeover import NOTE, Adopted, Takeover, takeover

if TYPE_CHECKING:  # the study (and Optuna) is handed in: importing the runner imports no Optuna
    from .study import Study, Ticket


class Launcher(Protocol):
    """How the sweep makes runs and starts their workers (the cockpit's one launch path), and finds runs.
    Making and starting are two steps: the trial learns its run before a worker exists, so a sweep
    process killed in between leaves no worker its trial does not know."""

    def create(self, spec: RunSpec, preset: str) -> Run: ...

    def spawn(self, run: Run, env: dict[str, str], claim: RunClaim | None = None) -> subprocess.Popen: ...

    def find(self, run_id: str) -> Run | None: ...


class Worker(Protocol):
    """A trial's worker as the runner watches it: a child process (Popen), or an adopted one."""
    pid: int

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


@dataclass(frozen=True)
class Slot:
    """Where one trial at a time runs: its environment (CUDA_VISIBLE_DEVICES) and spec overrides."""
    env: dict[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()


@dataclass
class Live:
    ticket: Ticket
    run: Run
    proc: Worker
    slot: int
    last_id: int = 0
    reported: set[int] = field(default_factory=set)
    pruned_at: int | None = None
    interrupted: bool = False


class Runner:
    """Run trials from `study` until none is left (or Ctrl+C)."""

    def __init__(self, study: Study, launcher: Launcher, slots: list[Slot], storage_url: str = "",
                 say: Callable[[str], None] = print, poll: float = 0.5, max_trials: int | None = None,
                 ledger: Path | None = None):
        self.study, self.launcher, self.slots = study, launcher, slots or [Slot()]
        self.storage_url, self.say, self.poll, self.max_trials = storage_url, say, poll, max_trials
        self.ledger = ledger  # the sweep's folder on this machine: each trial's run is noted there
        self.live: dict[int, Live] = {}
        self.started = 0

    def run(self) -> None:
        """The loop; KeyboardInterrupt stops the live runs, records them, and is raised again."""
        exhausted = False
        try:
            while True:
                if not exhausted:
                    exhausted = self._fill()
                for slot, live in list(self.live.items()):
                    if self._check(live):
                        del self.live[slot]
                if exhausted and not self.live:
                    return
                time.sleep(self.poll)
        except KeyboardInterrupt:
            self._interrupt()
            raise

    # -- starting --------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Start trials in the free slots; True when there is nothing left to start."""
        for slot in range(len(self.slots)):
            if slot in self.live:
                continue
            if self.max_trials is not None and self.started >= self.max_trials:
                return True
            ticket = self.study.next_ticket()
            if ticket is None:
                return True
            self.started += 1
            live = self._start(ticket, slot)
            if live is not None:
                self.live[slot] = live
        return False

    def _start(self, ticket: Ticket, slot: int) -> Live | None:
        sweep, cfg, s = self.study.sweep, ticket.config, self.slots[slot]
        try:
            spec = trial_spec(self.study.presets[cfg.preset], cfg.preset, sweep, cfg, ticket.seed, list(s.overrides))
            if sweep.needs_val and spec.data.val_size == 0:  # load_sweep refuses these; a stored older sweep
                raise UsageError("no validation split (data.val_size = 0): Optuna would choose on test accuracy")
            run, how, claim = self._trial_run(ticket, spec, cfg.preset)
            try:
                self._claim(ticket, run, how)
            except BaseException:
                if claim is not None:
                    claim.release()
                raise
            proc = (Adopted(run, self.poll / 2) if how in ("adopt", "record")
                    else self.launcher.spawn(run, dict(s.env), claim))  # the worker holds the claim from here
        except (SpecError, UsageError, StoreError, ValueError, OSError) as exc:
            why = redact(str(exc), self.storage_url)
            self.say(f"trial {ticket.trial.number} ({cfg.label}, seed {ticket.seed}) not started: {why}")
            self.study.tell(ticket, "invalid", error=why[:500])
            return None
        self.say(f"trial {ticket.trial.number}: {cfg.label}, seed {ticket.seed} -> {run.run_id}{NOTE[how]}")
        return Live(ticket, run, proc, slot)

    def _trial_run(self, ticket: Ticket, spec: RunSpec, preset: str) -> tuple[Run, Takeover, RunClaim | None]:
        """The trial's run, what to do with it, and the run's claim where a worker is to start on it
        (its spawn hands the claim over): a requeued trial's own run (adopted while its worker runs,
        recorded if it ended on its own, continued if it was stopped), else a new one."""
        run = self.launcher.find(ticket.resume_run) if ticket.resume_run else None
        if run is None:
            return self.launcher.create(spec, preset), "new", None
        try:  # decided and marked under the run's claim, which a continued run's worker then holds
            claim = RunClaim.take(run.path)
        except ClaimHeld:  # a live worker (or its launcher) has the run: watch it, start nothing
            return run, "adopt", None
        except StoreError:
            return self.launcher.create(spec, preset), "new", None
        try:
            how = takeover(run)
            if how == "continue":
                mark_for_resume(run, f"sweep {self.study.sweep.name} continues this trial")
        except BaseException:
            claim.release()
            raise
        if how in ("start", "continue"):
            return run, how, claim
        claim.release()
        return (self.launcher.create(spec, preset), "new", None) if how == "new" else (run, how, None)

    def _claim(self, ticket: Ticket, run: Run, how: Takeover) -> None:
        """Tie the trial and its run together (Optuna's attribute, the run's meta, the ledger), before
        any worker of it starts."""
        cfg = ticket.config
        ticket.trial.set_user_attr("run_id", run.run_id)
        kept = run.meta().get("sweep_outcome") if how in ("adopt", "record") else ""  # pruned while unwatched: stays so
        run.set_meta(sweep=self.study.sweep.name, sweep_trial=ticket.trial.number, sweep_config=cfg.label,
                     sweep_seed=ticket.seed, sweep_storage=redact(self.storage_url),
                     sweep_outcome="pruned" if kept == "pruned" else "")
        if self.ledger is not None:
            record(self.ledger, Entry(ticket.trial.number, cfg.label, ticket.seed, run.run_id))

    # -- watching --------------------------------------------------------------------------

    def _check(self, live: Live) -> bool:
        """Report new epochs, prune if asked; True once the worker has exited and the trial is told."""
        self._report(live)
        if live.proc.poll() is None:
            return False
        self._report(live)
        self._finish(live)
        return True

    def _report(self, live: Live) -> None:
        live.last_id, rows = live.run.metrics_since(live.last_id, names=["val_acc"])
        trial = live.ticket.trial
        for m in rows:
            epoch = int(round(m.epoch))
            if m.value is None or epoch in live.reported:
                continue
            live.reported.add(epoch)
            trial.report(m.value, epoch)
            if (live.pruned_at is None and not live.interrupted and self.study.sweep.pruning
                    and live.proc.poll() is None and trial.should_prune()):  # an ended run is never pruned after the fact
                live.pruned_at = epoch
                live.run.set_meta(sweep_outcome="pruned")
                live.run.send_command(Stop(reason=f"pruned by sweep {self.study.sweep.name}: val_acc at epoch "
                                              f"{epoch} below the median of earlier trials"), source="sweep")

    def _finish(self, live: Live) -> None:
        run, ticket = live.run, live.ticket
        state = run.reap()
        meta = run.meta()
        label = f"trial {ticket.trial.number} ({ticket.config.label}, seed {ticket.seed})"
        if live.pruned_at is not None or meta.get("sweep_outcome") == "pruned":
            outcome = "pruned"
        elif live.interrupted and state != "finished":
            outcome = INTERRUPTED
        else:
            outcome = state
        acc, val = final_acc(run), final_val_acc(run)
        run.set_meta(sweep_outcome=outcome if outcome in ("pruned", INTERRUPTED) else "")
        self.study.tell(ticket, outcome, val if outcome == "finished" else None, run_state=state, test_acc=acc,
                        error=str(meta.get("error") or "")[:500])
        shown = (f" test accuracy {acc:.2%}" if acc is not None else "") + (
            f", validation {val:.2%}" if val is not None else "")
        self.say(f"{label}: {outcome}{shown}" + (f" ({meta['error']})" if outcome not in ("finished", "pruned")
                                                   and meta.get("error") else ""))
        run.close()

    # -- Ctrl+C ----------------------------------------------------------------------------

    def _interrupt(self) -> None:
        """Stop every live run cleanly (a second Ctrl+C: at once), then record each trial."""
        for live in self.live.values():
            live.interrupted = True
            try:
                live.run.send_command(Stop(reason="sweep interrupted (Ctrl+C)"), source="sweep")
            except Exception:  # a run whose store is gone still gets recorded below
                pass
        self.say(f"stopping {len(self.live)} live trial(s) at their next step boundary (Ctrl+C again: at once)")
        try:
            for live in self.live.values():
                live.proc.wait()
        except KeyboardInterrupt:
            for live in self.live.values():
                _kill(live.proc)
        for live in list(self.live.values()):
            live.proc.wait()
            self._finish(live)
        self.live.clear()


def _kill(proc: Worker) -> None:
    """The worker's second SIGTERM exits it at once."""
    if proc.pid <= 0:  # an adopted worker that recorded no pid: os.kill(0) would signal this process group
        return
    for _ in range(2):
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        time.sleep(0.05)
