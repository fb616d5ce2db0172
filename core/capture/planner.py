"""The capture planner: from what the quotas still lack to capture sessions.

Input: a published quota plan's deficits per cell and split (in setups: one
item in one bag at one pose on one scanner model), the inventory, the
scanners, the shift length and each scanner's capture rate.
Output: one session per scanner and shift, each an ordered list of steps
(bag, item or none, pose, images, split).

Rules, in the order they are applied:

* **Split pools.** Every item and bag belongs to one split, assigned once and
  kept (the catalog refuses anything else, see migration 0003). Objects not in
  a pool yet are assigned here, balanced per class (items) and per luggage
  type x clutter level (bags), in barcode order.
* **Test first** (unless told otherwise): test setups come before train
  setups in the schedule.
* **Diversity and cap.** Each step is a setup never captured before in that
  split and model, and ``images_per_setup`` (the plan's cap) images of it.
  Items and bags are taken in turn (a cursor per class and per luggage
  type x clutter), so captures spread over every instance.
* **Capacity and physical bags.** A session holds at most rate x
  shift-length images. Within a shift a bag stays at one scanner; a setup
  that cannot go anywhere this shift waits for the next. While any test setup
  waits, no train setup is scheduled in that shift.
* **Changeovers.** Within a session steps are ordered bag, item, pose, so each
  bag is packed once and each item placed once per session. The report gives
  the weighted changeover cost (repack 3, item swap 2, pose change 1) next to
  its lower bound (each bag packed once per model, each item placed once per
  bag and model).

Deterministic: the same catalog and options give the same sessions. Planning
again retires planned sessions nobody started (kept, marked replaced), keeps
started ones (their remaining steps count as already planned), and plans only
what is still missing. Skipped setups are not planned again as they were.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from core.catalog import capture_store as sql
from core.errors import PlanError, UnknownNameError
from core.lab import Lab
from core.progress import Progress
from core.quota.plans import resolve_plan
from core.quota.status import quota_status

SPLITS = ("test", "train")


@dataclass(frozen=True)
class PlanOptions:
    quota_plan: str | None = None  # name; default the newest published plan
    start: date | None = None  # first shift's date; default today
    shifts: int = 5  # how many shifts ahead to schedule
    shifts_per_day: int = 1
    weekends: bool = False  # schedule Saturdays and Sundays too
    shift_hours: float = 8.0
    rate_per_hour: float = 60.0  # images per hour, every scanner unless in ``rates``
    rates: dict[str, float] = field(default_factory=dict)  # scanner name -> images per hour
    scanners: tuple[str, ...] = ()  # only these (default all)
    splits: tuple[str, ...] = ("test", "train")  # order = priority
    test_share: float = 0.5  # share of new items/bags put into the test pool
    dry_run: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data["start"] = self.start.isoformat() if self.start else None
        return json.dumps(data, sort_keys=True)


@dataclass(frozen=True)
class PlannedStep:
    bag_id: int
    item_id: int | None
    pose_id: int | None
    split: str
    images: int
    model_id: int


@dataclass
class PlannedSession:
    scanner_id: int
    scanner: str
    session_date: str
    shift: int
    steps: list[PlannedStep]

    @property
    def images(self) -> int:
        return sum(s.images for s in self.steps)


@dataclass
class CapturePlan:
    id: int | None
    quota_plan_id: int
    sessions: list[PlannedSession]
    report: dict


def _pool_assignment(objects: list[tuple], pools: dict[tuple[str, int], str], kind: str, share: float,
                     stratum_of) -> list[tuple[str, int, str]]:
    """Assign objects without a pool, balancing each stratum towards ``share`` test."""
    counts: dict[object, list[int]] = defaultdict(lambda: [0, 0])
    for obj in objects:
        split = pools.get((kind, obj[0]))
        if split:
            counts[stratum_of(obj)][split == "train"] += 1
    new = []
    for obj in objects:  # ordered by id = import order
        if (kind, obj[0]) in pools:
            continue
        c = counts[stratum_of(obj)]
        split = "test" if c[0] <= share * (c[0] + c[1]) else "train"
        c[split == "train"] += 1
        pools[(kind, obj[0])] = split
        new.append((kind, obj[0], split))
    return new


def _shift_dates(start: date, shifts: int, per_day: int, weekends: bool) -> list[tuple[str, int]]:
    out = []
    day = start
    while len(out) < shifts:
        if weekends or day.weekday() < 5:
            for k in range(per_day):
                if len(out) < shifts:
                    out.append((day.isoformat(), k + 1))
        day += timedelta(days=1)
    return out


def changeover_cost(sessions: list[PlannedSession]) -> dict[str, int]:
    """Changeovers of the sessions as ordered, and the lower bound of their weighted cost."""
    packs = places = steps = 0
    bag_models: set[tuple] = set()
    item_bag_models: set[tuple] = set()
    for session in sessions:
        previous = None
        for st in session.steps:
            steps += 1
            bag_models.add((st.bag_id, st.model_id))
            item_bag_models.add((st.bag_id, st.item_id, st.model_id))
            if previous is None or previous.bag_id != st.bag_id:
                packs += 1
                places += 1
            elif previous.item_id != st.item_id:
                places += 1
            previous = st
    # cost = 3*packs + 2*(item swaps) + 1*(pose changes) = packs + places + steps
    return {
        "repacks": packs, "item_swaps": places - packs, "pose_changes": steps - places,
        "cost": packs + places + steps,
        "lower_bound": len(bag_models) + len(item_bag_models) + steps,
    }


def plan_captures(lab: Lab, options: PlanOptions = PlanOptions(), *, actor: str | None = None) -> Iterator[Progress]:
    """Plan sessions from the current deficits; returns (StopIteration value) a CapturePlan.

    A generator (each yield is a phase, and where the caller may stop it; the
    catalog is written once, at the end). Runs on any thread.
    """
    if not options.dry_run:
        lab.catalog.require("plans")
    catalog = lab.catalog
    for split in options.splits:
        if split not in SPLITS:
            raise PlanError(f"unknown split '{split}' (use test, train)")
    if not 0.0 < options.test_share < 1.0:
        raise PlanError("the test share of new items and bags must be between 0 and 1")
    if options.shifts < 1 or options.shift_hours <= 0 or options.rate_per_hour <= 0:
        raise PlanError("shifts, shift hours and the capture rate must be positive")
    plan = resolve_plan(catalog, options.quota_plan)
    if plan["status"] != "published":
        raise PlanError(f"quota plan '{plan['name']}' v{plan['version']} is a draft; publish it before planning captures")
    ips = int(plan["images_per_setup"])
    yield Progress(0, 4, "reading deficits")

    status = quota_status(catalog, plan["id"])
    at_test, at_train = status.column("test_setups"), status.column("train_setups")
    done = {row[0]: (row[at_test], row[at_train]) for row in status.rows}
    cells = sql.plan_cell_keys(catalog, plan["id"])
    objects = sql.planner_objects(catalog)
    scanners = [s for s in objects["scanners"] if not options.scanners or s[1] in options.scanners]
    unknown = set(options.scanners) - {s[1] for s in objects["scanners"]}
    if unknown:
        raise UnknownNameError(f"no scanner named {', '.join(sorted(unknown))}")
    unknown_rates = set(options.rates) - {s[1] for s in objects["scanners"]}
    if unknown_rates:
        raise UnknownNameError(f"capture rate given for unknown scanner {', '.join(sorted(unknown_rates))}")

    pools = {(kind, oid): split for kind, oid, split in objects["pools"]}
    new_pools = _pool_assignment(objects["items"], pools, "item", options.test_share, lambda o: o[2])
    new_pools += _pool_assignment(objects["bags"], pools, "bag", options.test_share, lambda o: (o[2], o[3]))
    items_by = defaultdict(list)  # (split, class_id) -> [item ids]
    for item_id, _, class_id in objects["items"]:
        items_by[(pools[("item", item_id)], class_id)].append(item_id)
    bags_by = defaultdict(list)  # (split, luggage_type_id, clutter) -> [bag ids]
    for bag_id, _, lt, clutter in objects["bags"]:
        bags_by[(pools[("bag", bag_id)], lt, clutter)].append(bag_id)

    # Setups that exist, are in a started session, or were skipped are not planned again.
    used = {tuple(r) for r in sql.existing_setups(catalog)}
    used.update(tuple(r) for r in sql.skipped_setups(catalog))
    committed = sql.committed_steps(catalog)
    in_progress = {(split, model, bag, item, pose) for _, _, _, split, model, bag, item, pose in committed}
    used |= in_progress
    yield Progress(1, 4, "choosing setups")

    # How many setups of each cell the started sessions will still deliver.
    item_class = {i[0]: i[2] for i in objects["items"]}
    bag_stratum = {b[0]: (b[2], b[3]) for b in objects["bags"]}
    pending = defaultdict(int)
    for split, model, bag, item, pose in in_progress:
        lt, clutter = bag_stratum[bag]
        pending[(split, item_class.get(item, 0) if item else 0, lt, clutter, model, pose)] += 1

    cursors: dict[tuple, int] = defaultdict(int)
    setups: list[PlannedStep] = []
    unplannable = []
    for split in options.splits:
        target_at = 6 if split == "test" else 7
        for cell in cells:
            cell_id, class_id, lt, clutter, model, pose_id = cell[:6]
            key = (split, class_id or 0, lt, clutter, model, pose_id or 0)
            have = done.get(cell_id, (0, 0))[split == "train"] + pending.get(key, 0)
            deficit = cell[target_at] - have
            if deficit <= 0:
                continue
            items = items_by.get((split, class_id), []) if class_id else [None]
            bags = bags_by.get((split, lt, clutter), [])
            if not items or not bags:
                what = "item of this class" if not items else "bag of this luggage type and clutter"
                unplannable.append({"cell_id": cell_id, "split": split, "missing": deficit,
                                    "reason": f"no {split}-pool {what}"})
                continue
            planned = _choose(split, class_id, lt, clutter, model, pose_id, deficit, items, bags, used, cursors,
                              setups, ips)
            if planned < deficit:
                unplannable.append({"cell_id": cell_id, "split": split, "missing": deficit - planned,
                                    "reason": f"every {split}-pool item x bag at this pose is used up "
                                              f"(cap {ips} image(s) per setup)"})
    yield Progress(2, 4, f"scheduling {len(setups)} setups")

    busy_today = {c[1] for c in committed if c[2] == (options.start or date.today()).isoformat()}
    sessions, unscheduled = _schedule(setups, scanners, options, busy_today)
    report = {
        "quota_plan": f"{plan['name']} v{plan['version']}",
        "images_per_setup": ips,
        "sessions": len(sessions),
        "steps": sum(len(s.steps) for s in sessions),
        "images": sum(s.images for s in sessions),
        "setups_by_split": {sp: sum(1 for s in sessions for st in s.steps if st.split == sp) for sp in SPLITS},
        "unscheduled_setups": len(unscheduled),
        "unscheduled_by_split": {sp: sum(1 for st in unscheduled if st.split == sp) for sp in SPLITS},
        "unplannable": unplannable,
        "unplannable_setups": sum(u["missing"] for u in unplannable),
        "pools_assigned": {"items": sum(1 for p in new_pools if p[0] == "item"),
                           "bags": sum(1 for p in new_pools if p[0] == "bag")},
        "changeovers": changeover_cost(sessions),
        "kept_started_sessions": len({c[0] for c in committed}),
    }
    yield Progress(3, 4, "saving")
    plan_id = None
    if not options.dry_run:
        with catalog.write(actor) as txn:
            sql.assign_pools(txn, new_pools)
            report["replaced_sessions"] = sql.replace_planned_sessions(txn)
            plan_id = sql.insert_capture_plan(txn, plan["id"], options.to_json(), json.dumps(report))
            sql.insert_planned_sessions(txn, plan_id, [
                (s.scanner_id, s.session_date, s.shift,
                 [(pos, st.bag_id, st.item_id, st.pose_id, st.split, st.images) for pos, st in enumerate(s.steps, 1)])
                for s in sessions])
            txn.audit("plan", "capture_plan", plan_id, None, {k: report[k] for k in (
                "quota_plan", "sessions", "steps", "images", "unscheduled_setups", "unplannable_setups")})
    yield Progress(4, 4, f"{report['sessions']} sessions, {report['steps']} steps")
    return CapturePlan(plan_id, plan["id"], sessions, report)


def _choose(split, class_id, lt, clutter, model, pose_id, deficit, items, bags, used, cursors,
            out: list[PlannedStep], ips: int) -> int:
    """Add up to ``deficit`` new setups of one cell to ``out``; returns how many.

    Items and bags are taken in turn from per-class and per-stratum cursors, so
    successive cells spread over every instance; a pair already used is passed
    over.
    """
    n_items, n_bags = len(items), len(bags)
    item_key, bag_key = ("i", split, class_id), ("b", split, lt, clutter)
    pose = pose_id or 0
    planned = 0
    tries = 0  # consecutive pairs found used; after n_items x n_bags every pair was tried
    limit = n_items * n_bags
    while planned < deficit and tries < limit:
        i = cursors[item_key] % n_items
        b = cursors[bag_key] % n_bags
        item, bag = items[i], bags[b]
        key = (split, model, bag, item or 0, pose)
        tries += 1
        if key in used:
            # Walk the bags for this item; after a full round, move to the next item.
            cursors[bag_key] += 1
            if tries % n_bags == 0:
                cursors[item_key] += 1
            continue
        used.add(key)
        out.append(PlannedStep(bag, item, pose_id, split, ips, model))
        cursors[item_key] += 1
        cursors[bag_key] += 1
        planned += 1
        tries = 0
    return planned


def _schedule(setups: list[PlannedStep], scanners: list[tuple], options: PlanOptions,
              busy_today: set[int]) -> tuple[list[PlannedSession], list[PlannedStep]]:
    """Put setups into (shift, scanner) sessions within capacity; the rest is unscheduled.

    Each shift hands out bags to scanners in turn (a bag stays at its scanner
    for the shift, with all its setups for that scanner's model, biggest
    first), so every scanner gets work and each bag is packed once. The
    priority split goes first; the next split gets a shift only once nothing
    of the first is left waiting.
    """
    capacity = {s[0]: int((options.rates.get(s[1], options.rate_per_hour)) * options.shift_hours) for s in scanners}
    remaining = {split: [st for st in setups if st.split == split] for split in options.splits}
    start = options.start or date.today()
    sessions: list[PlannedSession] = []
    for shift_index, (day, shift) in enumerate(_shift_dates(start, options.shifts, options.shifts_per_day, options.weekends)):
        if not any(remaining.values()):
            break
        load = {s[0]: 0 for s in scanners}
        if shift_index == 0:
            for sid in busy_today:  # a started session has this scanner today
                load[sid] = capacity.get(sid, 0)
        pinned: dict[int, int] = {}  # bag -> scanner, this shift
        steps_of: dict[int, list[PlannedStep]] = defaultdict(list)
        for split in options.splits:
            remaining[split] = _hand_out(remaining[split], scanners, load, capacity, pinned, steps_of)
            if remaining[split]:
                break  # test first: the next split waits for a shift with room
        for s in scanners:
            if steps_of.get(s[0]):
                ordered = sorted(steps_of[s[0]], key=lambda st: (st.bag_id, st.item_id or 0, st.pose_id or 0))
                sessions.append(PlannedSession(s[0], s[1], day, shift, ordered))
    return sessions, [st for split in options.splits for st in remaining[split]]


def _hand_out(setups: list[PlannedStep], scanners: list[tuple], load: dict[int, int], capacity: dict[int, int],
              pinned: dict[int, int], steps_of: dict[int, list[PlannedStep]]) -> list[PlannedStep]:
    """One shift's round of bags to scanners; returns the setups left for later shifts."""
    jobs: dict[tuple[int, int], list[PlannedStep]] = defaultdict(list)  # (model, bag) -> setups
    for st in setups:
        jobs[(st.model_id, st.bag_id)].append(st)
    by_model: dict[int, list[int]] = defaultdict(list)  # model -> bags, most setups first
    for model, bag in sorted(jobs, key=lambda k: (k[0], -len(jobs[k]), k[1])):
        by_model[model].append(bag)
    cursor = defaultdict(int)
    left: list[PlannedStep] = []

    def take(sid: int, model: int, bag: int) -> None:
        job = jobs.pop((model, bag))
        room = (capacity[sid] - load[sid])
        fit = []
        for st in sorted(job, key=lambda st: (st.item_id or 0, st.pose_id or 0)):
            if st.images <= room:
                fit.append(st)
                room -= st.images
            else:
                left.append(st)
        load[sid] = capacity[sid] - room
        steps_of[sid].extend(fit)

    # Bags already at a scanner this shift (from the previous split) stay there.
    for (model, bag) in list(jobs):
        sid = pinned.get(bag)
        if sid is not None and any(s[0] == sid and s[2] == model for s in scanners):
            take(sid, model, bag)
    active = [s for s in scanners if load[s[0]] < capacity[s[0]]]
    while active:
        still = []
        for sid, _, model in active:
            bags = by_model.get(model, [])
            while cursor[model] < len(bags) and (bags[cursor[model]] in pinned or (model, bags[cursor[model]]) not in jobs):
                cursor[model] += 1
            if cursor[model] >= len(bags):
                continue
            bag = bags[cursor[model]]
            pinned[bag] = sid
            take(sid, model, bag)
            if load[sid] < capacity[sid]:
                still.append((sid, _, model))
        active = still
    for job in jobs.values():
        left.extend(job)
    return left
