"""The technician's checklist as a headless state machine.

:class:`ChecklistState` reads one session as one technician at one
workstation sees it: which step the card shows, which tags must be scanned
next, the ONE current instruction, and for each action (key or button) whether
it is enabled and, when not, why. :class:`Checklist` applies scans and keys:
each returns an :class:`Outcome` whose message says what happened or why
nothing did, so no key press goes unanswered. The Today view only shows these;
the rules live here and in :mod:`core.capture.sessions`.

Functions touch the catalog (call them off the GUI thread); the state itself
is a plain immutable value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.capture import sessions as cs
from core.lab import Lab


@dataclass(frozen=True)
class ActionState:
    enabled: bool
    why_not: str = ""  # a sentence the technician can act on, when not enabled


@dataclass(frozen=True)
class Outcome:
    """What one scan or key did. ``ok`` False: nothing changed and ``message`` says why."""

    ok: bool
    message: str
    changed: bool = False  # the catalog changed (refresh)
    error: BaseException | None = None  # the typed error, for the view to react to (take over, beep)
    result: Any = None
    session_id: int | None = None  # the session selected after the action (next session)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _bag(step: dict[str, Any]) -> str:
    return f"bag {step['bag']}"


def _item(step: dict[str, Any]) -> str:
    return f"item {step['item']}"


@dataclass(frozen=True)
class ChecklistState:
    """One session as ``technician`` at ``host`` sees it (``view`` None: no session chosen)."""

    view: cs.SessionView | None
    technician: str
    host: str
    held: bool = field(init=False)  # this technician at this workstation holds it
    silent_s: float = field(init=False)  # since the holder was last seen
    phase: str = field(init=False)
    step: dict[str, Any] | None = field(init=False)  # the step the card shows
    preview: bool = field(init=False)  # the step is shown before the session runs
    need: tuple[str, ...] = field(init=False)  # tags still to scan on the active step
    instruction: str = field(init=False)
    actions: dict[str, ActionState] = field(init=False)

    def __post_init__(self) -> None:
        view = self.view
        s = view.session if view else None
        held_by = s["held_by"] if s else None
        self._set("held", bool(s and held_by == self.technician and s["held_host"] == self.host))
        self._set("silent_s", cs._ago(s["held_seen_at"]) if s and held_by else float("inf"))
        active = view.active if view else None
        upcoming = view.upcoming(1) if view else []
        step = active if self.running else (active or (upcoming[0] if upcoming else None))
        self._set("step", step if view else None)
        self._set("preview", bool(step) and not self.running)
        self._set("need", cs.tags_needed(active) if active and self.running else ())
        phase = self._phase()
        self._set("phase", phase)
        self._set("instruction", self._instruction(phase))
        self._set("actions", self._actions())

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    # -- who holds it ------------------------------------------------------------

    @property
    def session(self) -> dict[str, Any] | None:
        return self.view.session if self.view else None

    @property
    def running(self) -> bool:
        """This technician at this workstation holds the open session."""
        return bool(self.held and self.session["status"] == "open")  # type: ignore[attr-defined]

    @property
    def held_elsewhere(self) -> bool:
        s = self.session
        return bool(s and s["held_by"] and not self.held)

    @property
    def holder(self) -> str:
        s = self.session or {}
        return f"{s.get('held_by')} at {s.get('held_host')}"

    @property
    def can_take_over(self) -> bool:
        return self.held_elsewhere and self.silent_s >= cs.HOLD_TIMEOUT_S  # type: ignore[attr-defined]

    @property
    def start_label(self) -> str:
        s = self.session
        if self.can_take_over:
            return "Take over…"
        return "Resume session" if s and s["started_at"] else "Start session"

    # -- the one instruction -------------------------------------------------------

    def _phase(self) -> str:
        s = self.session
        if s is None:
            return "no_session"
        if s["replaced_at"]:
            return "replaced"
        if s["status"] == "closed":
            return "closed"
        if self.held_elsewhere:
            return "left_by_other" if self.can_take_over else "held_by_other"
        if not self.running:
            return "finished_not_held" if self.view.finished else "not_started"  # type: ignore[union-attr]
        active = self.view.active  # type: ignore[union-attr]
        if active is None:
            return "finished"
        if self.need == ("bag", "item"):
            return "scan_bag_and_item"
        if self.need == ("bag",):
            # A clean step whose bag held an item a moment ago: the item comes out first.
            return "scan_bag_again" if active["item_id"] is None and active["bag_scanned_at"] else "scan_bag"
        if self.need == ("item",):
            return "scan_item"
        return "capture"

    def _instruction(self, phase: str) -> str:
        s, st = self.session, self.step
        if phase == "no_session":
            return "No session is chosen: pick a station and today's session (plan captures first if there is none)."
        sid = f"session #{s['id']}"
        if phase == "replaced":
            return f"{_sentence(sid)} was replaced by a newer capture plan: choose another session (F4)."
        if phase == "closed":
            return f"{_sentence(sid)} is closed: choose another session (F4)."
        if phase == "held_by_other":
            return (f"{_sentence(sid)} is being run by {self.holder}: choose another session (F4), "
                    f"or ask {s['held_by']} to leave it.")
        if phase == "left_by_other":
            return (f"{s['held_by']} at {s['held_host']} left {sid} (silent {cs._describe_ago(self.silent_s)}): "
                    "press Take over to continue it.")
        if phase == "finished_not_held":
            return f"Every step of {sid} is finished: press {self.start_label}, then close it."
        if phase == "not_started":
            where = f" at step {st['position']}" if st else ""
            return f"Press {self.start_label} to run {sid}{where}."
        if phase == "finished":
            return "Every step is finished: close the session."
        if phase == "scan_bag_and_item":
            return f"Scan {_bag(st)} and {_item(st)}."
        if phase == "scan_bag":
            return f"Scan {_bag(st)}."
        if phase == "scan_bag_again":
            return f"Take the item out, then scan {_bag(st)} again."
        if phase == "scan_item":
            return f"Bag {st['bag']} stays in: scan {_item(st)}."
        left = st["images_wanted"] - st["images_done"]
        pose = f" at pose {st['pose']}" if st["pose"] else ""
        what = f"{_bag(st)} with {_item(st)}{pose}" if st["item"] else f"{_bag(st)}, no item"
        return f"Tags confirmed: put {what} through the scanner ({left} more image{'s' if left != 1 else ''})."

    # -- what is enabled, and why not -----------------------------------------------

    def _why_not_running(self) -> str:
        phase = self.phase
        s = self.session
        if phase == "no_session":
            return "Choose a session first."
        if phase in ("replaced", "closed"):
            return f"Session #{s['id']} is {'replaced' if phase == 'replaced' else 'closed'}."
        if phase in ("held_by_other", "left_by_other"):
            return f"Session #{s['id']} is run by {self.holder}."
        return f"Press {self.start_label} first."

    def _actions(self) -> dict[str, ActionState]:
        s, view = self.session, self.view
        running, active = self.running, (self.view.active if self.view else None)
        off = self._why_not_running()
        out: dict[str, ActionState] = {}
        if not self.technician:
            start = ActionState(False, "Enter your name first.")
        elif s is None or self.phase in ("replaced", "closed"):
            start = ActionState(False, off)
        elif self.held:
            start = ActionState(False, f"You already run session #{s['id']}.")
        elif self.held_elsewhere and not self.can_take_over:
            wait = cs._describe_ago(cs.HOLD_TIMEOUT_S - self.silent_s).removesuffix(" ago")
            start = ActionState(False, f"Session #{s['id']} is being run by {self.holder}; it can be taken over "
                                       f"only after {s['held_by']} has been silent for "
                                       f"{cs.HOLD_TIMEOUT_S / 60:.0f} min ({wait} more).")
        else:
            start = ActionState(True)
        out["start"] = start
        out["release"] = ActionState(True) if self.held else ActionState(False, "You do not hold this session.")
        out["close"] = ActionState(True) if running else ActionState(False, off)
        out["print"] = ActionState(True) if s else ActionState(False, "Choose a session first.")
        out["move"] = ActionState(True) if running else ActionState(False, off)
        out["undo"] = ActionState(True) if running else ActionState(False, off)
        if not running:
            for name in ("scan", "skip", "flag", "take_waiting", "retake"):
                out[name] = ActionState(False, off)
            return out
        if active is None:
            done = "Every step is finished: close the session."
            for name in ("scan", "skip", "flag", "take_waiting", "retake"):
                out[name] = ActionState(False, done)
            return out
        out["scan"] = ActionState(True)
        out["skip"] = ActionState(True)
        out["flag"] = ActionState(True)
        waiting = len(view.waiting)  # type: ignore[union-attr]
        if not waiting:
            out["take_waiting"] = ActionState(False, "No image is waiting for a step.")
        elif self.need:
            out["take_waiting"] = ActionState(False, f"{waiting} image(s) wait: scan the step's tags first.")
        else:
            out["take_waiting"] = ActionState(True)
        out["retake"] = ActionState(True) if active["images_done"] else ActionState(
            False, f"Nothing to retake on step {active['position']}: it has no image yet.")
        return out

    def action(self, name: str) -> ActionState:
        return self.actions[name]


def load_state(lab: Lab, session_id: int | None, technician: str, host: str | None = None) -> ChecklistState:
    view = cs.session_view(lab, session_id) if session_id is not None else None
    return ChecklistState(view, technician.strip(), host or cs.host_name())


def next_session(sessions: list[dict[str, Any]], current: int | None) -> Outcome:
    """F4: the next session of the list not closed (after ``current``, wrapping round)."""
    open_ids = [s["id"] for s in sessions if s["status"] != "closed"]
    if not open_ids:
        return Outcome(False, "No open session today at this station." if not sessions
                       else "Every session today at this station is closed.", session_id=current)
    if open_ids == [current]:
        return Outcome(False, f"Session #{current} is the only open session today at this station.",
                       session_id=current)
    later = [i for i in open_ids if current is None or i > current]
    chosen = (later or open_ids)[0]
    row = next(s for s in sessions if s["id"] == chosen)
    holder = f", run by {row['held_by']}" if row["held_by"] else ""
    return Outcome(True, f"Session #{chosen} (shift {row['shift']}{holder}) chosen.", session_id=chosen)


class Checklist:
    """Applies the technician's scans and keys to one session; every call returns an
    :class:`Outcome` (a refusal never raises: its message is the feedback)."""

    def __init__(self, lab: Lab, technician: str, host: str | None = None):
        self.lab = lab
        self.technician = technician.strip()
        self.host = host or cs.host_name()

    def state(self, session_id: int | None) -> ChecklistState:
        return load_state(self.lab, session_id, self.technician, self.host)

    def _do(self, session_id: int | None, action: str, work, say) -> Outcome:
        state = self.state(session_id)
        allowed = state.action(action)
        if not allowed.enabled:
            return Outcome(False, allowed.why_not)
        try:
            result = work()
        except cs.SessionError as exc:
            return Outcome(False, _sentence(str(exc)), error=exc)
        return Outcome(True, say(result), changed=True, result=result)

    def start(self, session_id: int | None, take_over: bool = False) -> Outcome:
        state = self.state(session_id)
        allowed = state.action("start")
        if not allowed.enabled:
            return Outcome(False, allowed.why_not)
        try:
            view = cs.start_session(self.lab, session_id, self.technician, host=self.host,  # type: ignore[arg-type]
                                    take_over=take_over)
        except cs.SessionError as exc:
            return Outcome(False, _sentence(str(exc)), error=exc)
        return Outcome(True, f"Session #{session_id} is yours, {self.technician}.", changed=True, result=view)

    def scan(self, session_id: int | None, code: str) -> Outcome:
        if not code.strip():
            return Outcome(False, "Empty scan: nothing was read from the tag.")
        state = self.state(session_id)
        allowed = state.action("scan")
        if not allowed.enabled:
            return Outcome(False, f"Tag {code.strip()} not taken: {allowed.why_not[:1].lower()}{allowed.why_not[1:]}",
                           result=cs.ScanResult(False, allowed.why_not, False))
        try:
            result = cs.scan_barcode(self.lab, session_id, code, self.technician, host=self.host)  # type: ignore[arg-type]
        except cs.SessionError as exc:
            return Outcome(False, _sentence(str(exc)), error=exc, result=cs.ScanResult(False, str(exc), False))
        if not result.accepted:
            return Outcome(False, _sentence(result.message), changed=True, error=result.error, result=result)
        step = state.view.active  # type: ignore[union-attr]
        done = f"step {step['position']} confirmed" if result.confirmed else "accepted"
        return Outcome(True, f"{code.strip()} ok: {done}.", changed=True, result=result)

    def skip(self, session_id: int | None, reason: str, note: str = "") -> Outcome:
        return self._do(session_id, "skip", lambda: cs.skip_step(self.lab, session_id, reason, self.technician, note, host=self.host),
                        lambda _: f"Step skipped ({cs.SKIP_REASONS.get(reason, reason)}).")

    def flag(self, session_id: int | None, text: str) -> Outcome:
        if not text.strip():
            return Outcome(False, "Nothing flagged: say what the problem is.")
        return self._do(session_id, "flag", lambda: cs.flag_step(self.lab, session_id, text, self.technician, host=self.host),
                        lambda _: f"Flagged: {text.strip()}.")

    def take_waiting(self, session_id: int | None) -> Outcome:
        return self._do(session_id, "take_waiting", lambda: cs.assign_waiting(self.lab, session_id, self.technician, host=self.host),
                        lambda ids: f"{len(ids)} waiting image(s) joined this step.")

    def retake(self, session_id: int | None, image_id: int | None = None) -> Outcome:
        """F6: the current step's selected (or newest) image; never another step's."""
        return self._do(session_id, "retake",
                        lambda: cs.retake_current(self.lab, session_id, self.technician, image_id, host=self.host),
                        lambda img: f"Image #{img} set aside; this step takes one more.")

    def retake_image(self, session_id: int | None, image_id: int) -> Outcome:
        """An image chosen by name (right-click), of any step of the session."""
        return self._do(session_id, "move", lambda: cs.retake_image(self.lab, session_id, image_id, self.technician, host=self.host),
                        lambda _: f"Image #{image_id} set aside; its step takes one more.")

    def move(self, session_id: int | None, image_id: int, step_id: int | None) -> Outcome:
        return self._do(session_id, "move",
                        lambda: cs.reassign_image(self.lab, session_id, image_id, step_id, self.technician, host=self.host),
                        lambda _: f"Image #{image_id} moved.")

    def undo(self, session_id: int | None) -> Outcome:
        return self._do(session_id, "undo", lambda: cs.undo_last(self.lab, session_id, self.technician, host=self.host),
                        lambda text: f"Undone: {text}.")

    def release(self, session_id: int | None) -> Outcome:
        return self._do(session_id, "release",
                        lambda: cs.release_session(self.lab, session_id, self.technician, host=self.host),
                        lambda _: f"Left session #{session_id}; it stays open for anyone to resume.")

    def close(self, session_id: int | None) -> Outcome:
        return self._do(session_id, "close", lambda: cs.close_session(self.lab, session_id, self.technician, host=self.host),
                        lambda counts: f"Session #{session_id} closed.")
