"""``xlab run``: training and evaluation runs on dataset versions, their queue, results and the loop."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, decimal, emit, ident, percent, print_json, print_table, say, when

LIST_COLUMNS = (
    Column("id", "Run", ident),
    Column("kind", "Kind"),
    Column("state", "State"),
    Column("model", "Model"),
    Column("train", "Train set"),
    Column("test", "Test set"),
    Column("device", "Device"),
    Column("AP50", "AP50", lambda v: "—" if v is None else percent(v), right=True),
    Column("created_by", "By"),
    Column("created_at", "Queued", when),
)


def _pct(v: Any) -> str:
    return "—" if v is None else percent(v)


RESULT_COLUMNS = (
    Column("class_name", "Class"),
    Column("split", "Split"),
    Column("threshold", "τ", lambda v: "—" if v is None else f"{v:.3f}", right=True),
    Column("positives", "Setups", count),
    Column("pd", "Pd", _pct, right=True),
    Column("pd_low", "Pd low", _pct, right=True),
    Column("pd_high", "Pd high", _pct, right=True),
    Column("negatives", "Clean setups", count),
    Column("far", "False alarms", _pct, right=True),
    Column("ap50", "AP50", _pct, right=True),
    Column("ap", "AP", _pct, right=True),
)

LOOP_COLUMNS = (
    Column("class_name", "Class"),
    Column("verdict", "Verdict"),
    Column("ratio_from", "Step", lambda v: f"{v}:1"),
    Column("ratio_to", "Next", lambda v: f"{v}:1"),
    Column("state", "State"),
    Column("decided_by", "Accepted by", lambda v: v or ""),
    Column("reason", "Why"),
)

COMPARE_COLUMNS = (
    Column("class_name", "Class"),
    Column("pd_a", "Pd A", _pct, right=True),
    Column("pd_b", "Pd B", _pct, right=True),
    Column("far_a", "FA A", _pct, right=True),
    Column("far_b", "FA B", _pct, right=True),
    Column("ap50_a", "AP50 A", _pct, right=True),
    Column("ap50_b", "AP50 B", _pct, right=True),
)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key in ("epochs", "batch_size", "lr", "image_size", "seed", "workers", "device"):
        value = getattr(args, key, None)
        if value is not None:
            params[key] = value
    if getattr(args, "no_amp", False):
        params["amp"] = False
    for item in getattr(args, "param", None) or []:
        key, _, value = item.partition("=")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


def _queue_and_maybe_work(args: argparse.Namespace, kind: str) -> int:
    from core.runs.queue import require_torch
    from core.runs.records import RunRequest, create_run

    require_torch()
    request = RunRequest(kind, args.model, train=getattr(args, "train", None), test=args.test, params=_params(args),
                         weights=args.weights, source_run=args.from_run, note=args.note or "")
    with open_lab(args) as lab:
        run = create_run(lab, request, actor=args.user)
        if not args.json:
            say(f"run {run['id']} queued: {kind} {run['model']} (seed {run['seed']})")
            _cpu_warning(lab, run)
        if args.queue_only:
            if args.json:
                print_json({"id": run["id"], "state": run["state"]})
            return 0
        return _work(lab, args, only=run["id"])


def _cpu_warning(lab, run: dict[str, Any]) -> None:  # noqa: ANN001 - core.lab.Lab
    from core.runs.probe import cpu_warning

    line = cpu_warning(lab, run)
    if line:
        say(line)


def _work(lab, args: argparse.Namespace, only: int | None = None, wait: bool = False) -> int:
    from core.errors import RunnerBusyError
    from core.runs.queue import work

    last_state = ""
    final: dict[str, Any] = {}
    try:
        progress = work(lab, args.user, only=only, wait=wait)
        try:
            for p in progress:
                if p.message and not args.json and not args.quiet:
                    say(p.message)
                if p.event and not args.json and not args.quiet:
                    line = _event_line(p.run_id, p.event)
                    if line:
                        say(line)
                if p.state in ("done", "cancelled", "failed", "interrupted"):
                    final[p.run_id] = p.state
                last_state = p.state
        except KeyboardInterrupt:
            # Ask the run to stop cleanly (it keeps a checkpoint), then let the generator conclude it.
            from core.runs.records import cancel

            for run_id in [only] if only else []:
                try:
                    cancel(lab, run_id, args.user)
                except Exception:  # noqa: BLE001 - already finished: nothing to stop
                    pass
            for p in progress:
                if p.state in ("done", "cancelled", "failed", "interrupted"):
                    final[p.run_id] = p.state
            say("stopped: the run keeps its checkpoint; 'xlab run resume' goes on")
    except RunnerBusyError as exc:
        say(str(exc))
        return 0
    if only is not None:
        from core.runs.records import show

        record = show(lab, only)
        if args.json:
            print_json(_jsonable(record))
        else:
            _print_record(record)
        return 0 if record["state"] == "done" else 1
    if args.json:
        print_json({"finished": final})
    return 0 if last_state != "failed" else 1


def _event_line(run_id: int, e: dict[str, Any]) -> str | None:
    kind = e["event"]
    if kind == "start":
        return (f"run {run_id}: on {e.get('device_name') or e.get('device')}, torch {e.get('torch')}, "
                f"images {e.get('images')}" + (f" — {e['warning']}" if e.get("warning") else ""))
    if kind == "epoch":
        val = e.get("val") or {}
        ap50 = f", validation AP50 {100 * val['AP50']:.1f}%" if val.get("AP50") is not None else ""
        return (f"run {run_id}: epoch {e.get('epoch')} loss {e.get('loss', 0):.4f}{ap50}, "
                f"{e.get('images_per_s', 0):.1f} images/s")
    if kind in ("warning", "error"):
        return f"run {run_id}: {kind}: {e.get('message')}"
    if kind in ("cancelled", "done"):
        return f"run {run_id}: {kind}"
    return None


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record, default=str))


def _print_record(r: dict[str, Any]) -> None:
    say(f"run {r['id']}: {r['kind']} {r['model']} — {r['state']}" + (f" ({r['message']})" if r["message"] else ""))
    say(f"  train {r['train'] or '—'}, test {r['test']}, seed {r['seed']}, device {r['device'] or '—'}")
    say(f"  {r['code_version']}; torch {r['env'].get('torch', '—')}, CUDA {r['env'].get('cuda') or '—'}")
    if r["weights"]:
        say(f"  started from {r['weights']} (sha256 {r['weights_sha256'][:16]}…)")
    if r["model_sha256"]:
        say(f"  final model sha256 {r['model_sha256'][:16]}…  in {r['run_dir']}")
    coco = r["metrics"].get("coco") or {}
    if coco:
        say(f"  test set: AP {_pct(coco.get('AP'))}, AP50 {_pct(coco.get('AP50'))}, AP75 {_pct(coco.get('AP75'))}, "
            f"false-alarm rate {_pct(r['metrics'].get('false_alarm_rate'))}")
    if r["results"]:
        print_table(r["results"], RESULT_COLUMNS)
    if r["loop"]:
        say("the loop (per class, the next ratio step; 'xlab run accept' publishes them into the plan):")
        print_table(r["loop"], LOOP_COLUMNS)


def cmd_train(args: argparse.Namespace) -> int:
    return _queue_and_maybe_work(args, "train")


def cmd_eval(args: argparse.Namespace) -> int:
    return _queue_and_maybe_work(args, "eval")


def cmd_work(args: argparse.Namespace) -> int:
    from core.runs.queue import require_torch

    require_torch()
    with open_lab(args) as lab:
        return _work(lab, args, wait=args.wait)


def cmd_list(args: argparse.Namespace) -> int:
    from core.runs.queue import reconcile, runner
    from core.runs.records import list_runs

    with open_lab(args) as lab:
        reconcile(lab, args.user)
        rows = list_runs(lab, args.state)
        emit(args, rows, rows, LIST_COLUMNS)
        if not args.json:
            who = runner(lab)
            say(f"the queue is worked by {who}" if who else
                "nobody works the queue now: 'xlab run work' starts the queued runs")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from core.runs.records import show

    with open_lab(args) as lab:
        record = show(lab, args.run)
    if args.json:
        print_json(_jsonable(record))
    else:
        _print_record(record)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from core.runs.records import cancel

    with open_lab(args) as lab:
        state = cancel(lab, args.run, args.user)
    say(f"run {args.run}: {state}" + (" (it stops at its next step and keeps a checkpoint)"
                                      if state == "cancelling" else ""))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from core.runs.queue import require_torch
    from core.runs.records import resume

    require_torch()
    with open_lab(args) as lab:
        resume(lab, args.run, args.user)
        say(f"run {args.run} queued again; it goes on from its last checkpoint")
        if args.queue_only:
            return 0
        return _work(lab, args, only=args.run)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from core.runs.records import reproduce

    with open_lab(args) as lab:
        run = reproduce(lab, args.run, args.user)
    say(f"run {run['id']} queued: a reproduction of run {args.run} (same versions, model, parameters, seed)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from core.runs.records import compare

    with open_lab(args) as lab:
        c = compare(lab, args.a, args.b)
    if args.json:
        print_json(_jsonable(c))
        return 0
    for side in ("a", "b"):
        r = c[side]
        coco = r["metrics"].get("coco") or {}
        say(f"{side.upper()}: run {r['id']} {r['model']} on {r['train'] or '—'} / {r['test']}: "
            f"AP50 {_pct(coco.get('AP50'))}, seed {r['seed']}")
    print_table(c["classes"], COMPARE_COLUMNS)
    for split, d in c["datasets"].items():
        if d.get("same"):
            say(f"{split} set: both on {d['from']}")
        else:
            say(f"{split} set: {d['from']} → {d['to']}: {d['added']:,} images added, {d['removed']:,} removed, "
                f"{d['labels_changed']:,} with changed labels")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from core.runs.loop import accept

    with open_lab(args) as lab:
        out = accept(lab, args.run, args.classes or None, args.user)
    if args.json:
        print_json(out)
        return 0
    changes = ", ".join(f"{n} → {k}:1" for n, k in sorted(out["changes"].items())) or "no ratio step changed"
    say(f"{out['plan']} v{out['version']} published: {changes}. 'xlab quota status' shows the new train targets; "
        "'xlab plan' captures train data for the classes that need it.")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from core.runs.probe import probe

    info = probe()
    if args.json:
        print_json(info)
        return 0
    if info.get("error"):
        say(info["error"])
        return 1
    say(f"torch {info['torch']}, torchvision {info['torchvision']}, CUDA {info.get('cuda') or '—'}, "
        f"driver {info.get('driver') or '—'}")
    if info["devices"]:
        for d in info["devices"]:
            say(f"  GPU {d['index']}: {d['name']}, {d['memory_mb']:,} MB, compute capability {d.get('capability')}")
    else:
        say(f"no GPU: runs go to the CPU ({info.get('cpu_threads')} threads) — slow; fine for the demo's small model")
    return 0


def cmd_worst(args: argparse.Namespace) -> int:
    from core.runs.results import worst_images

    with open_lab(args) as lab:
        rows = worst_images(lab, args.run, args.class_name, args.limit)
    emit(args, rows, rows, (Column("image_id", "Image", ident), Column("kind", "Why"),
                            Column("score", "Best score", decimal), Column("threshold", "τ", decimal)))
    return 0


def cmd_confusion(args: argparse.Namespace) -> int:
    from core.runs.results import confusion

    with open_lab(args) as lab:
        c = confusion(lab, args.run)
    if args.json:
        print_json(c)
        return 0
    names = c["classes"] + ["missed"]
    rows = [{"class_name": t, **{n: c["matrix"][t].get(n, 0) for n in names}} for t in c["classes"]]
    rows.append({"class_name": "(clean bags)", **{n: c["false_alarms"].get(n, 0) for n in c["classes"]}})
    print_table(rows, (Column("class_name", "True class \\ alarm"),
                       *(Column(n, n, count) for n in names)))
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    from core.training.models import MODELS

    group = subparsers.add_parser("run", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    for kind, helptext in (("train", "train a detector on a frozen train set (then evaluate it on its test set)"),
                           ("eval", "evaluate a model (a weights file or a run's) on a frozen test set")):
        p = actions.add_parser(kind, parents=[common.lab, common.json, common.quiet], help=helptext)
        p.add_argument("--model", choices=list(MODELS), default=next(iter(MODELS)) if kind == "eval" else None,
                       required=kind == "train", help="detector: " + "; ".join(f"{k}: {v}" for k, v in MODELS.items()))
        if kind == "train":
            p.add_argument("--train", required=True, metavar="NAME[@N]",
                           help="frozen train set (its validation subset chooses the operating threshold)")
        else:
            p.add_argument("--train", metavar="NAME[@N]", help="train set whose validation subset chooses the threshold")
        p.add_argument("--test", metavar="NAME[@N]", help="frozen test set (default: the one the train set clones)")
        p.add_argument("--weights", metavar="FILE", help="state_dict to start from (train) or to evaluate (eval); "
                                                         "its sha256 is recorded")
        p.add_argument("--from-run", type=int, metavar="RUN", help="use the final model of that run")
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--lr", type=float)
        p.add_argument("--image-size", type=int, help="longest image side the run resizes to (pixels)")
        p.add_argument("--seed", type=int, help="seed (default: new, recorded)")
        p.add_argument("--workers", type=int, help="data loader processes")
        p.add_argument("--device", choices=("auto", "cuda", "cpu"))
        p.add_argument("--no-amp", action="store_true", help="no mixed precision on the GPU")
        p.add_argument("--param", action="append", metavar="KEY=VALUE", help="any other training parameter")
        p.add_argument("--note", help="a note kept with the run")
        p.add_argument("--queue-only", action="store_true",
                       help="queue it and return (whoever works the queue starts it in turn)")
        p.set_defaults(func=cmd_train if kind == "train" else cmd_eval)
    p = actions.add_parser("work", parents=[common.lab, common.json, common.quiet],
                           help="start the queued runs in turn (one at a time on this workstation)")
    p.add_argument("--wait", action="store_true", help="keep waiting for new runs (Ctrl-C stops)")
    p.set_defaults(func=cmd_work)
    p = actions.add_parser("list", parents=[common.lab, common.json], help="runs, newest first")
    p.add_argument("--state", action="append", choices=("queued", "running", "cancelling", "done", "cancelled",
                                                        "failed", "interrupted"))
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("show", parents=[common.lab, common.json],
                           help="a run: record, environment, per-class results, the loop's proposals")
    p.add_argument("run", type=int, metavar="RUN")
    p.set_defaults(func=cmd_show)
    p = actions.add_parser("cancel", parents=[common.lab], help="cancel a run (a running one stops cleanly, "
                                                                "keeping a checkpoint)")
    p.add_argument("run", type=int, metavar="RUN")
    p.set_defaults(func=cmd_cancel)
    p = actions.add_parser("resume", parents=[common.lab, common.json, common.quiet],
                           help="go on with an interrupted or cancelled run from its last checkpoint")
    p.add_argument("run", type=int, metavar="RUN")
    p.add_argument("--queue-only", action="store_true", help="queue it and return")
    p.set_defaults(func=cmd_resume)
    p = actions.add_parser("reproduce", parents=[common.lab], help="queue a new run from a run's record")
    p.add_argument("run", type=int, metavar="RUN")
    p.set_defaults(func=cmd_reproduce)
    p = actions.add_parser("compare", parents=[common.lab, common.json],
                           help="two runs side by side, with their dataset versions' diff")
    p.add_argument("a", type=int, metavar="RUN_A")
    p.add_argument("b", type=int, metavar="RUN_B")
    p.set_defaults(func=cmd_compare)
    p = actions.add_parser("accept", parents=[common.lab, common.json],
                           help="accept a run's next ratio steps: publish the plan's next version")
    p.add_argument("run", type=int, metavar="RUN")
    p.add_argument("--class", dest="classes", action="append", metavar="CLASS", help="only these classes")
    p.set_defaults(func=cmd_accept)
    p = actions.add_parser("worst", parents=[common.lab, common.json],
                           help="a class's worst test images in a run (missed, false alarms)")
    p.add_argument("run", type=int, metavar="RUN")
    p.add_argument("class_name", metavar="CLASS")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_worst)
    p = actions.add_parser("confusion", parents=[common.lab, common.json],
                           help="true class × alarm class on the test set, with misses and false alarms")
    p.add_argument("run", type=int, metavar="RUN")
    p.set_defaults(func=cmd_confusion)
    p = actions.add_parser("probe", parents=[common.json], help="the GPU (or CPU) runs would use, and torch's version")
    p.set_defaults(func=cmd_probe)
