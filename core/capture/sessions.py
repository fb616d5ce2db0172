"""Running a capture session: the technician's side of the checklist.

A session is planned (by the planner, or opened by hand with explicit steps),
started by one technician at one station, and closed. While it runs:

* the active step takes the images its scanner writes only once its tags are
  confirmed: the bag's barcode, and the item's unless the bag travels clean.
  A wrong or unknown tag is refused with the reason. A step that keeps the
  previous step's bag and item (a pose change) starts confirmed;
* the step completes when its count is reached (ingest moves to the next);
* the technician can skip or flag a step with a reason, retake or reassign an
  image, assign images that arrived before the tags were scanned, and undo
  the last of those actions.

Everything is in the audit log (entity ``capture_session``). One technician
at one workstation holds a session at a time, across processes: starting it
records who, where and when they were last seen (a heartbeat) with a
compare-and-set in one write transaction; anyone else is refused
(:class:`SessionHeldError`) while that holder is alive, and may take over a
session whose holder has been silent for ``HOLD_TIMEOUT_S``. The workstation
is the station's name (core.lab.station_name: ``xlab --station NAME``, ``$XLAB_STATION``, else
the host name). The catalog is
the whole state, so reopening after a crash resumes at the active step with
each image counted once (ingest is idempotent by content hash).
All functions run on any thread; each write is one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from core.catalog import capture_store as sql
from core.catalog import ingest_store
from core.catalog.db import WriteTransaction, utc_now
from core.errors import UnknownNameError, XLabError
from core.lab import Lab, station_name

HOLD_TIMEOUT_S = 120.0  # a holder not seen for this long may be taken over
HEARTBEAT_S = 30.0
SKIP_REASONS = {
    "item_missing": "item missing",
    "bag_damaged": "bag damaged",
    "scanner_fault": "scanner fault",
    "other": "other",
}
UNDOABLE = ("scan", "skip", "flag", "retake", "reassign", "assign_waiting")
# A step whose objects may have left the scanner: its tags must be scanned again.
UNCONFIRMED = {"bag_scanned_at": None, "item_scanned_at": None, "confirmed_at": None, "confirmed_by": None}


class SessionError(XLabError):
    pass


class SessionBusyError(SessionError):
    """Another technician runs this session (or this scanner) right now."""


class SessionHeldError(SessionBusyError):
    """The session is held by someone else. ``can_take_over`` once the holder
    has been silent for ``HOLD_TIMEOUT_S`` (the caller asks before taking it)."""

    def __init__(self, session_id: int, scanner: str, holder: str, host: str, last_seen: str | None,
                 silent_s: float):
        self.session_id, self.scanner, self.holder, self.host = session_id, scanner, holder, host
        self.last_seen, self.silent_s = last_seen, silent_s
        self.can_take_over = silent_s >= HOLD_TIMEOUT_S
        where = f"{holder} at {host}, last seen {_describe_ago(silent_s)}"
        if self.can_take_over:
            text = f"session #{session_id} on {scanner} was left by {where}; take it over to continue it"
        else:
            wait = _describe_ago(HOLD_TIMEOUT_S - silent_s).removesuffix(" ago")
            text = (f"session #{session_id} on {scanner} is being run by {where}; two technicians cannot run "
                    f"one session (it can be taken over if {holder} stays silent {wait} more)")
        super().__init__(text)


class ScannerBusyError(SessionBusyError):
    """Another session on the same scanner is held right now."""

    def __init__(self, scanner: str, session_id: int, holder: str, host: str):
        self.scanner, self.session_id, self.holder, self.host = scanner, session_id, holder, host
        super().__init__(f"{scanner} is running session #{session_id} by {holder} at {host}; "
                         "one session per scanner at a time")


class HoldLostError(SessionBusyError):
    """The heartbeat found that this holder no longer holds the session."""

    def __init__(self, session_id: int, holder: str | None):
        self.session_id, self.holder = session_id, holder
        super().__init__(f"session #{session_id} is now run by {holder or 'nobody'}; it was taken over or closed")


class WrongTagError(SessionError):
    """A scanned tag that is not the one the active step waits for (returned, not raised:
    the refusal is recorded in the audit log)."""

    def __init__(self, code: str, message: str, *, kind: str | None, expected: tuple[str, ...]):
        self.code, self.kind, self.expected = code, kind, expected
        super().__init__(message)


class NothingToRetakeError(SessionError):
    """Retake acts on the current step only, and it has no image yet."""


@dataclass(frozen=True)
class StepSpec:
    bag: str  # barcode
    item: str | None  # barcode, None for a clean bag
    pose: str | None
    split: str
    images: int = 1


@dataclass(frozen=True)
class ScanResult:
    accepted: bool
    message: str
    confirmed: bool  # the active step is now confirmed
    error: WrongTagError | None = None  # why it was refused


def tags_needed(step: dict[str, Any]) -> tuple[str, ...]:
    """The tags (``"bag"``, ``"item"``) still to scan before ``step`` takes images: the one
    place the confirmation rule lives. A clean step always wants its bag scanned
    (the item that was in it must be out); a bag that stayed in keeps its scan."""
    if step["confirmed_at"] is not None:
        return ()
    if step["item_id"] is None:
        return ("bag",)
    return tuple(k for k in ("bag", "item") if step[f"{k}_scanned_at"] is None)


@dataclass(frozen=True)
class SessionView:
    """A session as the checklist shows it: its row, its steps, images waiting for a step."""

    session: dict[str, Any]
    steps: list[dict[str, Any]]
    waiting: list[int]

    @property
    def active(self) -> dict[str, Any] | None:
        return next((s for s in self.steps if s["status"] == "active"), None)

    def upcoming(self, n: int = 5) -> list[dict[str, Any]]:
        return [s for s in self.steps if s["status"] == "pending"][:n]

    @property
    def images_done(self) -> int:
        return sum(min(s["images_done"], s["images_wanted"]) for s in self.steps)

    @property
    def images_wanted(self) -> int:
        return sum(s["images_wanted"] for s in self.steps)

    @property
    def finished(self) -> bool:
        return all(s["status"] in ("done", "skipped") for s in self.steps)


def host_name() -> str:
    """This workstation's name in holds (core.lab.station_name)."""
    return station_name()


def _ago(stamp: str | None) -> float:
    if not stamp:
        return float("inf")
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()


def _describe_ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago"


# -- opening, holding, closing ------------------------------------------------


def open_session(lab: Lab, scanner: str, technician: str, steps: list[StepSpec], *, actor: str | None = None,
                 host: str | None = None) -> int:
    """Create a session with explicit steps, started by ``technician``; its first step is active."""
    if not steps:
        raise SessionError("a capture session needs at least one step")
    ids = sql.names_to_ids(lab.catalog)
    if scanner not in ids["scanners"]:
        raise UnknownNameError(f"no scanner named '{scanner}'")
    rows = []
    for position, spec in enumerate(steps, start=1):
        if spec.bag not in ids["bags"]:
            raise UnknownNameError(f"step {position}: unknown bag barcode '{spec.bag}'")
        if spec.item is not None and spec.item not in ids["items"]:
            raise UnknownNameError(f"step {position}: unknown item barcode '{spec.item}'")
        if spec.pose is not None and spec.pose not in ids["poses"]:
            raise UnknownNameError(f"step {position}: unknown pose '{spec.pose}'")
        if spec.split not in ("test", "train"):
            raise SessionError(f"step {position}: split must be test or train")
        rows.append((position, ids["bags"][spec.bag], ids["items"].get(spec.item) if spec.item else None,
                     ids["poses"].get(spec.pose) if spec.pose else None, spec.split, spec.images,
                     "active" if position == 1 else "pending"))
    with lab.catalog.write(actor or technician) as txn:
        session_id = sql.insert_session(txn, ids["scanners"][scanner], technician, date.today().isoformat(), rows)
        now = utc_now()
        sql.update_session(txn, session_id, started_at=now, held_by=technician, held_host=host or host_name(),
                           held_seen_at=now)
        txn.audit("open", "capture_session", session_id, None,
                  {"scanner": scanner, "technician": technician, "steps": len(rows)})
    return session_id


def steps(lab: Lab, session_id: int) -> list[dict]:
    return sql.steps_of(lab.catalog, session_id)


def scanners(lab: Lab) -> list[dict]:
    """Every scanner of the lab with its station, model and drop folder."""
    return ingest_store.scanners(lab.catalog)


def list_sessions(lab: Lab, day: str | None = None, scanner: str | None = None, *, include_closed: bool = True
                  ) -> list[dict[str, Any]]:
    """Sessions of ``day`` (ISO date; today by default, every day with "all")."""
    day = None if day == "all" else (day or date.today().isoformat())
    return sql.sessions(lab.catalog, day, scanner, include_closed)


def session_view(lab: Lab, session_id: int) -> SessionView:
    row = sql.session(lab.catalog, session_id)
    if row is None:
        raise UnknownNameError(f"no capture session #{session_id}")
    waiting = sql.waiting_images(lab.catalog, row["scanner_id"], row["started_at"]) if row["started_at"] else []
    return SessionView(row, sql.steps_of(lab.catalog, session_id), waiting)


def recent_images(lab: Lab, session_id: int, limit: int = 12) -> list[dict[str, Any]]:
    """The session's newest images, newest first (for thumbnails)."""
    return sql.session_images(lab.catalog, session_id, limit)


def start_session(lab: Lab, session_id: int, technician: str, *, host: str | None = None,
                  take_over: bool = False) -> SessionView:
    """Start or resume a session as ``technician`` at ``host``.

    Refused while another technician holds it (or another session on the same
    scanner) and was seen in the last ``HOLD_TIMEOUT_S``; ``take_over`` takes a
    session whose holder went silent.
    """
    technician = technician.strip()
    if not technician:
        raise SessionError("enter your name before starting a session")
    host = host or host_name()
    with lab.catalog.write(technician) as txn:
        row = sql.session(txn, session_id)
        if row is None:
            raise UnknownNameError(f"no capture session #{session_id}")
        if row["replaced_at"]:
            raise SessionError(f"session #{session_id} was replaced by a newer capture plan; open today's list again")
        if row["status"] == "closed":
            raise SessionError(f"session #{session_id} is closed")
        holder = row["held_by"]
        mine = holder == technician and row["held_host"] == host
        if holder and not mine:
            held = SessionHeldError(session_id, row["scanner"], holder, row["held_host"], row["held_seen_at"],
                                    _ago(row["held_seen_at"]))
            if not (held.can_take_over and take_over):
                raise held
        for oid, by, at_host, seen in sql.other_holders(txn, row["scanner_id"], session_id):
            if (by, at_host) != (technician, host) and _ago(seen) < HOLD_TIMEOUT_S:
                raise ScannerBusyError(row["scanner"], oid, by, at_host)
        now = utc_now()
        action = "resume" if mine or (holder is None and row["started_at"]) else ("take_over" if holder else "start")
        # Compare-and-set on the hold as read: the write transaction already
        # serialises writers, and this keeps one holder on a database whose
        # transactions do not (the lab server the catalog grows into).
        if not sql.take_hold(txn, session_id, (holder, row["held_host"], row["held_seen_at"]), technician, host, now):
            raise SessionBusyError(f"session #{session_id} was just started elsewhere; open it again to see by whom")
        sql.update_session(txn, session_id, status="open", technician=technician, started_at=row["started_at"] or now)
        if sql.active_step_id(txn, session_id) is None:
            ingest_store.activate_next_step(txn, session_id, None)
        txn.audit(action, "capture_session", session_id, {"held_by": holder}, {"held_by": technician, "host": host})
    return session_view(lab, session_id)


def heartbeat(lab: Lab, session_id: int, technician: str, *, host: str | None = None) -> None:
    """Record that the holder is still there; raises if someone took the session over."""
    host = host or host_name()
    with lab.catalog.write(technician) as txn:
        if not sql.touch_hold(txn, session_id, technician, host):
            row = sql.session(txn, session_id)
            raise HoldLostError(session_id, row["held_by"] if row else None)


def release_session(lab: Lab, session_id: int, technician: str, *, host: str | None = None) -> None:
    """Let go of a session (leaving the station); it stays open for anyone to resume."""
    host = host or host_name()
    with lab.catalog.write(technician) as txn:
        if sql.drop_hold(txn, session_id, technician, host):
            txn.audit("release", "capture_session", session_id, {"held_by": technician}, None)


def close_session(lab: Lab, session_id: int, technician: str, *, host: str | None = None) -> dict[str, int]:
    """Close a session; steps not done stay pending (the next plan plans them again)."""
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        active = sql.active_step_id(txn, session_id)
        if active is not None:
            sql.update_step(txn, active, status="pending", **UNCONFIRMED)
        counts = sql.step_status_counts(txn, session_id)
        sql.update_session(txn, session_id, status="closed", closed_at=utc_now(), held_by=None, held_host=None,
                           held_seen_at=None)
        txn.audit("close", "capture_session", session_id, None, counts)
    return counts


def _require_holder(txn: WriteTransaction, session_id: int, technician: str, host: str | None = None) -> dict[str, Any]:
    """The session, if ``technician`` holds it (at workstation ``host``, when given: a
    session is run from one station at a time, even by the same person)."""
    row = sql.session(txn, session_id)
    if row is None:
        raise UnknownNameError(f"no capture session #{session_id}")
    if row["status"] != "open":
        raise SessionError(f"session #{session_id} is {row['status']}; start it first")
    if row["held_by"] != technician:
        who = f"run by {row['held_by']}" if row["held_by"] else "not started by you"
        raise SessionBusyError(f"session #{session_id} is {who}; start or resume it first")
    if host is not None and row["held_host"] != host:
        raise SessionBusyError(f"session #{session_id} is run by {technician} at {row['held_host']}, not at {host}; "
                               "release it there, or take it over here once that station has been silent")
    return row


def _active(txn: WriteTransaction, session_id: int) -> dict[str, Any]:
    step_id = sql.active_step_id(txn, session_id)
    if step_id is None:
        raise SessionError("every step of this session is finished")
    return sql.step(txn, step_id)  # type: ignore[return-value]


# -- the checklist's actions -----------------------------------------------------


def _expected(step: dict[str, Any], kind: str) -> str:
    if kind == "bag":
        return f"bag {step['bag']} ({step['luggage_type']}, {step['clutter']} clutter)"
    return f"item {step['item']} ({step['class_name']})"


def scan_barcode(lab: Lab, session_id: int, code: str, technician: str, *, host: str | None = None) -> ScanResult:
    """A tag scanned (or typed) at the station: confirms the active step's bag or item, or is refused."""
    code = code.strip()
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        st = _active(txn, session_id)
        found = sql.object_by_barcode(txn, code) if code else None
        needed = tags_needed(st)
        refusal = None
        if found is None:
            refusal = WrongTagError(code, f"'{code}' is not a barcode in the inventory; check the tag",
                                    kind=None, expected=needed)
        else:
            kind, object_id = found
            wanted = st["bag_id"] if kind == "bag" else st["item_id"]
            if kind == "item" and st["item_id"] is None:
                refusal = WrongTagError(
                    code, f"{code} refused: this step is a clean bag, no item goes in ({_expected(st, 'bag')})",
                    kind=kind, expected=needed)
            elif object_id != wanted:
                refusal = WrongTagError(code, f"{code} is not this step's {kind}: scan {_expected(st, kind)}",
                                        kind=kind, expected=needed)
        if refusal is not None:
            txn.audit("scan_refused", "capture_session", session_id, None,
                      {"step_id": st["id"], "barcode": code, "reason": str(refusal)})
            return ScanResult(False, str(refusal), st["confirmed_at"] is not None, refusal)
        column = f"{kind}_scanned_at"
        now = utc_now()
        changes: dict[str, Any] = {column: now}
        already = kind not in needed and st[column] is not None
        left = tuple(k for k in needed if k != kind)
        confirmed = not left
        if confirmed and st["confirmed_at"] is None:
            changes.update(confirmed_at=now, confirmed_by=technician)
        sql.update_step(txn, st["id"], **changes)
        txn.audit("scan", "capture_session", session_id,
                  {column: st[column], "confirmed_at": st["confirmed_at"], "confirmed_by": st["confirmed_by"]},
                  {"step_id": st["id"], "tag": kind, "barcode": code, "confirmed": confirmed})
    if confirmed:
        message = f"{code} ok: step {st['position']} confirmed, start scanning"
    else:
        message = f"{code} ok{' (again)' if already else ''}: now scan {_expected(st, left[0])}"
    return ScanResult(True, message, confirmed)


def skip_step(lab: Lab, session_id: int, reason: str, technician: str, note: str = "", *, host: str | None = None) -> int | None:
    """Skip the active step with a reason; returns the step that is active now."""
    if reason not in SKIP_REASONS:
        raise SessionError(f"unknown skip reason '{reason}' (use {', '.join(SKIP_REASONS)})")
    if reason == "other" and not note.strip():
        raise SessionError("say why the step is skipped")
    text = SKIP_REASONS[reason] + (f": {note.strip()}" if note.strip() else "")
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        st = _active(txn, session_id)
        sql.update_step(txn, st["id"], status="skipped", skip_reason=text)
        # The skipped step's bag (and item) may stay on the belt for the next step.
        nxt = ingest_store.activate_next_step(txn, session_id, st["id"])
        txn.audit("skip", "capture_session", session_id, {"status": "active"},
                  {"step_id": st["id"], "reason": text, "next_step_id": nxt})
    return nxt


def flag_step(lab: Lab, session_id: int, reason: str, technician: str, step_id: int | None = None, *, host: str | None = None) -> None:
    """Note a problem on a step (the active one by default) without leaving it."""
    if not reason.strip():
        raise SessionError("say what the problem is")
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        st = sql.step(txn, step_id) if step_id else _active(txn, session_id)
        if st is None or st["session_id"] != session_id:
            raise UnknownNameError(f"no step #{step_id} in session #{session_id}")
        sql.update_step(txn, st["id"], flag_reason=reason.strip())
        txn.audit("flag", "capture_session", session_id, {"flag_reason": st["flag_reason"]},
                  {"step_id": st["id"], "flag_reason": reason.strip()})


_count = ingest_store.usable_images_of_step


def _reopen_if_short(txn: WriteTransaction, step_id: int) -> None:
    """A done step that lost an image comes back: now if the active step has no
    images yet (that one waits), else right after it."""
    st = sql.step(txn, step_id)
    if st is None or st["status"] != "done" or _count(txn, step_id) >= st["images_wanted"]:
        return
    active_id = sql.active_step_id(txn, st["session_id"])
    if active_id is not None and _count(txn, active_id) > 0:
        sql.update_step(txn, step_id, status="pending")
        return
    # What is in the scanner now is what the active step had confirmed: the
    # step that comes back keeps the bag (and the item) it shares with it.
    sql.update_step(txn, step_id, **UNCONFIRMED)
    if active_id is not None:
        sql.carry_tags(txn, active_id, step_id)
        sql.update_step(txn, active_id, status="pending", **UNCONFIRMED)
    sql.update_step(txn, step_id, status="active")


def _complete_if_full(txn: WriteTransaction, step_id: int) -> None:
    st = sql.step(txn, step_id)
    if st is None or _count(txn, step_id) < st["images_wanted"]:
        return
    if st["status"] == "active":
        ingest_store.complete_step_if_full(txn, st)
    elif st["status"] == "pending":
        sql.update_step(txn, step_id, status="done")


def _session_image(txn: WriteTransaction, session_id: int, image_id: int) -> dict[str, Any]:
    image = sql.image_row(txn, image_id)
    if image is None:
        raise UnknownNameError(f"no image #{image_id}")
    if image["step_id"] is not None:
        st = sql.step(txn, image["step_id"])
        if st["session_id"] != session_id:
            raise SessionError(f"image #{image_id} belongs to another session")
    return image


def retake_image(lab: Lab, session_id: int, image_id: int, technician: str, *, host: str | None = None) -> None:
    """Set an image aside (kept, marked 'retake', not counted) so its step takes one more."""
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        _retake(txn, session_id, image_id)


def _retake(txn: WriteTransaction, session_id: int, image_id: int) -> None:
    image = _session_image(txn, session_id, image_id)
    if not image["usable"]:
        raise SessionError(f"image #{image_id} is already set aside")
    flags = ",".join(f for f in (image["quality_flags"], "retake") if f)
    sql.set_image_usable(txn, image_id, False, flags)
    if image["step_id"] is not None:
        _reopen_if_short(txn, image["step_id"])
    txn.audit("retake", "capture_session", session_id, {"usable": 1, "quality_flags": image["quality_flags"]},
              {"image_id": image_id, "step_id": image["step_id"]})


def retake_current(lab: Lab, session_id: int, technician: str, image_id: int | None = None, *, host: str | None = None) -> int:
    """F6: set aside ``image_id``, or the newest usable image, of the active step; returns the image.

    Acts on the current step only: an image of another step is retaken by name
    (:func:`retake_image`), never by moving the checklist back.
    """
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        step_id = sql.active_step_id(txn, session_id)
        if step_id is None:
            raise NothingToRetakeError("nothing to retake: every step of this session is finished")
        st = sql.step(txn, step_id)
        images = sql.usable_step_images(txn, step_id)
        if image_id is None:
            if not images:
                raise NothingToRetakeError(
                    f"nothing to retake on step {st['position']}: it has no image yet "
                    "(to retake an earlier step's image, right-click its thumbnail)")
            image_id = images[0]
        elif image_id not in images:
            raise NothingToRetakeError(
                f"image #{image_id} is not one of step {st['position']}'s images; F6 retakes the current step only "
                "(right-click the thumbnail to retake it)")
        _retake(txn, session_id, image_id)
    return image_id


def reassign_image(lab: Lab, session_id: int, image_id: int, step_id: int | None, technician: str, *, host: str | None = None) -> None:
    """Move an image to another step of this session (or to none: unassigned)."""
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        image = _session_image(txn, session_id, image_id)
        _move(txn, image, step_id, technician, session_id)
        txn.audit("reassign", "capture_session", session_id, {"step_id": image["step_id"]},
                  {"image_id": image_id, "step_id": step_id})


def _move(txn: WriteTransaction, image: dict[str, Any], step_id: int | None, technician: str, session_id: int) -> None:
    target = None
    if step_id is not None:
        target = sql.step(txn, step_id)
        if target is None or target["session_id"] != session_id:
            raise UnknownNameError(f"no step #{step_id} in session #{session_id}")
    sql.move_image(txn, image["id"], target, technician)
    if image["step_id"] is not None and image["step_id"] != step_id:
        _reopen_if_short(txn, image["step_id"])
    if target is not None:
        _complete_if_full(txn, target["id"])


def assign_waiting(lab: Lab, session_id: int, technician: str, *, host: str | None = None) -> list[int]:
    """Give the confirmed active step the images that arrived before its tags were scanned (up to its count)."""
    with lab.catalog.write(technician) as txn:
        row = _require_holder(txn, session_id, technician, host)
        st = _active(txn, session_id)
        if st["confirmed_at"] is None:
            raise SessionError("scan the step's tags first: the images get this step's bag and item")
        room = st["images_wanted"] - _count(txn, st["id"])
        ids = sql.waiting_images(txn, row["scanner_id"], row["started_at"])[:max(0, room)]
        for image_id in ids:
            sql.move_image(txn, image_id, st, technician)
        _complete_if_full(txn, st["id"])
        txn.audit("assign_waiting", "capture_session", session_id, None, {"step_id": st["id"], "image_ids": ids})
    return ids


def undo_last(lab: Lab, session_id: int, technician: str, *, host: str | None = None) -> str:
    """Undo the newest scan, skip, flag, retake, reassign or assignment not undone yet; returns what was undone."""
    with lab.catalog.write(technician) as txn:
        _require_holder(txn, session_id, technician, host)
        undone = {json.loads(a or "{}").get("undoes") for _, _, a in sql.session_actions(txn, session_id, ("undo",))}
        entry = next((e for e in sql.session_actions(txn, session_id, UNDOABLE) if e[0] not in undone), None)
        if entry is None:
            raise SessionError("nothing to undo")
        audit_id, action, after_json = entry
        after = json.loads(after_json)
        before = sql.audit_before(txn, audit_id)
        text = _UNDO[action](txn, session_id, after, before, technician)
        txn.audit("undo", "capture_session", session_id, None, {"undoes": audit_id, "action": action, "what": text})
    return text


def _undo_scan(txn, session_id, after, before, technician) -> str:
    st = sql.step(txn, after["step_id"])
    if st["status"] != "active" or _count(txn, st["id"]) > 0:
        raise SessionError("cannot undo that scan: the step has moved on or has images (retake them instead)")
    column = f"{after['tag']}_scanned_at"
    sql.update_step(txn, st["id"], **{column: before[column], "confirmed_at": before["confirmed_at"],
                                      "confirmed_by": before["confirmed_by"]})
    return f"scan of {after['barcode']}"


def _undo_skip(txn, session_id, after, before, technician) -> str:
    current = sql.active_step_id(txn, session_id)
    if current is not None and _count(txn, current) > 0:
        raise SessionError("cannot undo the skip: the next step already has images")
    if current is not None:
        sql.update_step(txn, current, status="pending", **UNCONFIRMED)
    sql.update_step(txn, after["step_id"], status="active", skip_reason=None)
    return f"skip of step #{after['step_id']}"


def _undo_flag(txn, session_id, after, before, technician) -> str:
    sql.update_step(txn, after["step_id"], flag_reason=before["flag_reason"])
    return f"flag on step #{after['step_id']}"


def _undo_retake(txn, session_id, after, before, technician) -> str:
    sql.set_image_usable(txn, after["image_id"], True, before["quality_flags"])
    if after["step_id"] is not None:
        _complete_if_full(txn, after["step_id"])
    return f"retake of image #{after['image_id']}"


def _undo_reassign(txn, session_id, after, before, technician) -> str:
    image = _session_image(txn, session_id, after["image_id"])
    _move(txn, image, before["step_id"], technician, session_id)
    return f"move of image #{after['image_id']}"


def _undo_assign_waiting(txn, session_id, after, before, technician) -> str:
    for image_id in after["image_ids"]:
        sql.move_image(txn, image_id, None, technician)
    _reopen_if_short(txn, after["step_id"])
    return f"assignment of {len(after['image_ids'])} waiting image(s)"


_UNDO = {"scan": _undo_scan, "skip": _undo_skip, "flag": _undo_flag, "retake": _undo_retake,
         "reassign": _undo_reassign, "assign_waiting": _undo_assign_waiting}
