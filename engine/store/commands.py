"""A run's commands and results: clients queue typed commands (validated at the door) and wait for
the worker's acknowledgement; the worker stores typed results, validated again on read.

A command may carry a deadline (wall time): the client waits until then. A command goes from
`pending` to exactly one of: `taken` by the worker (then `done` or `failed`), or `expired`: by the
client that gave up at its deadline, or by the worker that finds it overdue. Both transitions are
conditional updates of a pending row, so a command the client gave up on is never executed, and one
the worker took is never reported as dropped.

The typed models (engine.contracts, pydantic) are imported by the methods that use them: opening,
listing and reaping runs needs none of them, and the TUI paints its first screen before it loads pydantic."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from .db import RunDB
from .lifecycle import ACTIVE_STATES

if TYPE_CHECKING:
    from ..contracts import Command, ResultModel


CommandStatus = Literal["pending", "taken", "done", "failed", "expired"]
ANSWERED: tuple[CommandStatus, ...] = ("done", "failed", "expired")  # final: nothing more will happen


@dataclass(frozen=True)
class PendingCommand:
    """A command row waiting for the worker: the typed command, or None and why it is malformed;
    its deadline (wall time; None: it waits for ever)."""
    id: int
    kind: str
    command: Command | None
    error: str = ""
    deadline: float | None = None


@dataclass(frozen=True)
class StoredResult:
    """A results row: where and when, and the typed data."""
    id: int
    wall: float
    step: int
    kind: str
    checkpoint: str
    data: ResultModel


class RunCommands(RunDB):
    """A run's commands and results (a part of `engine.store.Run`, whose RunLifecycle gives `reap`:
    waiting on a command ends when the run does)."""

    reap: Callable[[], str]

    def send_command(self, command: Command | str, source: str = "", *, deadline: float | None = None,
                     **args: Any) -> int:
        """Queue a command for the worker; validated at the door (CommandError says what is wrong).

        `command` is a typed `Command`, or a kind whose `args` are validated into one; `deadline`
        (wall time) is when its client stops waiting: after it, the command is never executed."""
        from ..contracts import command_args, parse_command

        if isinstance(command, str):
            command = parse_command(command, args)
        elif args:
            raise TypeError("pass the arguments inside the Command model")
        self._add_deadline_column()
        with self.transaction():
            cur = self.con.execute(
                "INSERT INTO commands (wall, kind, args, source, deadline) VALUES (?, ?, ?, ?, ?)",
                (time.time(), command.kind, json.dumps(command_args(command)), source, deadline),
            )
        return int(cur.lastrowid)

    def pending_commands(self) -> list[PendingCommand]:
        """Commands not yet acknowledged, oldest first. A row that does not validate (a damaged
        table, an old client) comes back with `command` None and `error` saying why."""
        from ..contracts import CommandError, parse_command

        self._add_deadline_column()
        rows = self.con.execute("SELECT id, kind, args, deadline FROM commands WHERE status = 'pending' ORDER BY id")
        out = []
        for cid, kind, raw, deadline in rows:
            deadline = float(deadline) if isinstance(deadline, (int, float)) else None
            try:
                args = json.loads(raw)
                if not isinstance(args, dict):
                    raise ValueError("arguments are not a JSON object")
                out.append(PendingCommand(cid, kind, parse_command(kind, args), deadline=deadline))
            except (ValueError, CommandError) as exc:
                out.append(PendingCommand(cid, kind, None, f"malformed: {exc}", deadline))
        return out

    def take_command(self, cid: int) -> bool:
        """The worker's claim on a pending command before it acts on it: False when its client has
        given up on it (expired) or its deadline has passed (then it is marked expired here)."""
        now = time.time()
        with self.transaction():
            taken = self.con.execute(
                "UPDATE commands SET status = 'taken' WHERE id = ? AND status = 'pending' "
                "AND (deadline IS NULL OR deadline > ?)", (cid, now)).rowcount
            if not taken:
                self.con.execute(
                    "UPDATE commands SET status = 'expired', acked_wall = ?, reply = ? WHERE id = ? AND status = 'pending'",
                    (now, "reached the worker after its client's deadline: not executed", cid))
        return bool(taken)

    def taken_commands(self) -> list[tuple[int, str]]:
        """(id, kind) of the commands the worker took and has not answered yet."""
        return [(int(r[0]), str(r[1])) for r in self.con.execute("SELECT id, kind FROM commands WHERE status = 'taken'")]

    def expire_command(self, cid: int, reply: str) -> bool:
        """The client's side: give up on a command the worker has not taken; False when the worker
        took (or answered) it first, so it will be, or has been, executed."""
        with self.transaction():
            return bool(self.con.execute(
                "UPDATE commands SET status = 'expired', acked_wall = ?, reply = ? WHERE id = ? AND status = 'pending'",
                (time.time(), reply, cid)).rowcount)

    def _add_deadline_column(self) -> None:
        """run.db files made before command deadlines get the column (an ALTER TABLE that only adds a
        nullable column: old readers and writers are unaffected)."""
        if getattr(self, "_deadlines", False) or self.readonly:
            return
        columns = {r[1] for r in self.con.execute("PRAGMA table_info(commands)")}
        if "deadline" not in columns:
            with self.transaction():
                if "deadline" not in {r[1] for r in self.con.execute("PRAGMA table_info(commands)")}:
                    self.con.execute("ALTER TABLE commands ADD COLUMN deadline REAL")
        self._deadlines = True

    def ack_command(self, cid: int, status: str = "done", reply: str = "") -> None:
        with self.transaction():
            self.con.execute(
                "UPDATE commands SET status = ?, acked_wall = ?, reply = ? WHERE id = ?",
                (status, time.time(), reply, cid),
            )

    def command(self, cid: int) -> sqlite3.Row | None:
        return self.con.execute("SELECT * FROM commands WHERE id = ?", (cid,)).fetchone()

    def wait_command(self, cid: int, timeout: float = 30.0, poll: float = 0.1) -> sqlite3.Row | None:
        """Wait until the worker answers a command (or the run ends); None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.command(cid)
            if row is not None and row["status"] in ANSWERED:
                return row
            if self.reap() not in ACTIVE_STATES:
                return self.command(cid)
            time.sleep(poll)
        return None

    def add_result(self, result: ResultModel, *, step: int = 0, checkpoint: str = "") -> None:
        """Store a typed result (its kind is the model's)."""
        from ..contracts import ResultModel

        if not isinstance(result, ResultModel) or not result.KIND:
            raise TypeError(f"add_result takes a result model from engine.contracts, not {type(result).__name__}")
        with self.transaction():
            self.con.execute(
                "INSERT INTO results (wall, step, kind, checkpoint, data) VALUES (?, ?, ?, ?, ?)",
                (time.time(), step, result.KIND, checkpoint, result.model_dump_json()),
            )

    def results(self, kind: str | None = None, after_id: int = 0) -> list[StoredResult]:
        """Stored results (of one kind), oldest first, validated into their models; a row that does
        not validate (a damaged table, a kind this version does not know) is left out."""
        from ..contracts import parse_result

        sql, args = "SELECT * FROM results WHERE id > ?", (after_id,)
        if kind:
            sql, args = sql + " AND kind = ?", (after_id, kind)
        out = []
        for r in self.con.execute(sql + " ORDER BY id", args).fetchall():
            try:
                data = parse_result(r["kind"], json.loads(r["data"]))
            except ValueError:  # pydantic's ValidationError is a ValueError too
                continue
            out.append(StoredResult(r["id"], r["wall"], r["step"], r["kind"], r["checkpoint"], data))
        return out

    def last_result_id(self) -> int:
        """The id of the newest results row (0 when there is none): results after it are new."""
        row = self.con.execute("SELECT MAX(id) FROM results").fetchone()
        return int(row[0] or 0)
