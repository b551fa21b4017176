"""The comparison report of `vopd compare`, rebuilt from the runs' ledgers alone.

`<out>/compare.json` names the arms, their runs, lr sweeps and the reference points (blind floor,
teacher); every number below is read from `<run>/metrics.jsonl` (or, when the run directories are
gone, from the copies under `<out>/ledgers/`, gzipped or not) and each arm's protocol from its
runs' saved `config.yaml`. Written: REPORT.md; one PNG per budget view — validation mIoU against
training wall-clock, learner FLOPs, completions generated, distinct prompts seen and prompts seen
(one thin line per seed, a thick mean line per arm, the floor and the teacher as reference lines);
the lr sweeps' curves; a stacked bar of time per phase; `plot_data.json` (exactly the plotted
numbers) and `results.json` (the tables); and a copy of every ledger and config under `ledgers/`
so any plot can be redrawn.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

TARGET_FRACTIONS = (0.5, 0.8, 0.9)
# The budget views: x-axis key in a curve -> label. Every one gets a plot and a time-to-target.
AXES = {
    "train_seconds": "training wall-clock (s, evaluation excluded)",
    "learner_flops": "learner FLOPs",
    "completions": "completions generated (sampled rows; SFT: its training rows)",
    "distinct_prompts": "distinct prompts seen",
    "samples_seen": "prompts seen (with repeats)",
}
AXIS_HEADERS = {  # table header, digits, scale
    "train_seconds": ("training s", 0, 1.0),
    "learner_flops": ("learner GFLOPs", 2, 1e9),
    "completions": ("completions", 0, 1.0),
    "distinct_prompts": ("distinct prompts", 0, 1.0),
    "samples_seen": ("prompts seen", 0, 1.0),
}
PHASES_SKIPPED = ("step",)
BASELINE = "grpo"
DEFAULT_SWEEP_MIN_GAP = 2.0  # mIoU points
NA = "n/a"
# How an objective's rows come about when the registry cannot say: (samples?, ground-truth
# rows, teacher signal).
_OBJECTIVE_FALLBACK = {
    "sft": (False, "only", "none"),
    "tempsamp": (True, "per_group", "none"),
    "seqkd": (False, "none", "answers"),
}


def objective_rows(objective: str | None) -> tuple[bool, str, str]:
    """Whether `objective` samples completions, its ground-truth rows ("none", "per_group":
    TempSamp-R1's one per group, "only": SFT's, the whole batch) and its teacher signal
    ("answers": sequence-level KD trains on the teacher's answers)."""
    if not objective:
        return True, "none", "none"
    try:
        from trainer.objectives.registry import get_objective_spec

        spec = get_objective_spec(objective)
        return bool(spec.samples), str(spec.ground_truth), str(spec.teacher)
    except (ImportError, ValueError):
        return _OBJECTIVE_FALLBACK.get(objective, (True, "none", "none"))


def _cumulative(
    records: list[dict[str, Any]], rows_per_prompt: int | None
) -> list[dict[str, float]]:
    """Per record, the running totals in every budget unit (NaN from the first record that lacks
    the field the unit needs). Completions are the sampled rows, (prompts - skipped) x
    `rows_per_prompt` (rollout.n; the ledger's `completions` counts only the rows kept after
    dynamic filtering); an objective that samples nothing (SFT, sequence-level KD) counts its
    training rows instead, prompts x `rows_per_prompt` (default 1)."""
    from launch.driver import training_seconds

    out = []
    seconds = flops = rows = 0.0
    seen: set[str] | None = set()
    previous_seen = 0.0
    for record in records:
        seconds += training_seconds(record)
        if "learner_flops" in record:
            flops += float(record["learner_flops"] or 0.0)
        else:
            flops = math.nan
        samples_seen = float(record.get("samples_seen", math.nan))
        ids = record.get("sample_ids")
        prompts = float(len(ids)) if ids is not None else samples_seen - previous_seen
        previous_seen = samples_seen
        sampling = objective_rows(record.get("objective"))[0]
        if not sampling:  # training rows: the student generated nothing
            rows += prompts * (rows_per_prompt or 1)
        elif rows_per_prompt is not None:
            rows += (prompts - float(record.get("skipped_prompts") or 0.0)) * rows_per_prompt
        else:
            rows = math.nan
        if ids is None or seen is None:
            seen = None
        else:
            seen.update(str(i) for i in ids)
        out.append(
            {
                "train_seconds": seconds,
                "learner_flops": flops,
                "completions": rows,
                "distinct_prompts": float(len(seen)) if seen is not None else math.nan,
                "samples_seen": samples_seen,
            }
        )
    return out


def run_curve(
    records: list[dict[str, Any]], rows_per_prompt: int | None = None
) -> dict[str, list[float]]:
    """The evaluation points of one run: the cumulative amount spent in every budget unit (AXES)
    at every step that evaluated on the val split, with the val metrics there.
    `rows_per_prompt`: the sampled completions per prompt (rollout.n) — for an objective that
    samples nothing, its training rows per prompt (default 1); None leaves the completions of a
    sampling objective unknown (NaN)."""
    curve: dict[str, list[float]] = {k: [] for k in (*AXES, "step", "mIoU", "parse_rate")}
    for record, totals in zip(records, _cumulative(records, rows_per_prompt), strict=True):
        if "val" not in record:
            continue
        curve["step"].append(float(record["step"]))
        for axis in AXES:
            curve[axis].append(totals[axis])
        curve["mIoU"].append(float(record["val"]["mIoU"]))
        curve["parse_rate"].append(float(record["val"].get("parse_rate", math.nan)))
    return curve


def run_totals(
    records: list[dict[str, Any]], rows_per_prompt: int | None = None
) -> dict[str, float]:
    """What a whole run spent in every budget unit (NaN where the ledger lacks the field)."""
    totals = _cumulative(records, rows_per_prompt)
    return totals[-1] if totals else {axis: math.nan for axis in AXES}


def phase_seconds(records: list[dict[str, Any]]) -> dict[str, float]:
    """Total seconds per phase over a run (rollout, teacher, learner, sync, eval, ...)."""
    totals: dict[str, float] = {}
    for record in records:
        for name, value in record.get("time", {}).items():
            if name not in PHASES_SKIPPED:
                totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def targets(references: dict[str, float]) -> dict[str, float]:
    """Val mIoU targets: floor + f x (teacher - floor) for each fraction f of the teacher's gain."""
    floor, teacher = references["floor"], references["teacher"]
    return {f"{round(f * 100)}%": floor + f * (teacher - floor) for f in TARGET_FRACTIONS}


def compute_to_target(curve: dict[str, list[float]], target: float) -> dict[str, float] | None:
    """What was spent in every budget unit at the first evaluation reaching `target` (None:
    never; NaN in a unit the ledger cannot measure)."""
    for i, value in enumerate(curve["mIoU"]):
        if value >= target:
            return {axis: curve[axis][i] for axis in AXES}
    return None


def sweep_verdict(
    finals: dict[str, float], floor: float, min_gap: float = DEFAULT_SWEEP_MIN_GAP
) -> dict[str, Any]:
    """Pick an lr sweep's winner and say whether the sweep separated its candidates.

    `finals` maps repr(lr) to the candidate's final val mIoU. The highest final wins (ties to the
    smaller lr; a candidate that never evaluated ranks last). The sweep is *separated* when the
    winner leads the second best by at least `min_gap` mIoU and sits at least `min_gap` above the
    blind floor; otherwise the choice says nothing about the lrs ("not separated")."""
    ranked = sorted(finals.items(), key=lambda kv: (-_finite(kv[1]), float(kv[0])))
    if not ranked:
        raise ValueError("an lr sweep needs at least one candidate")
    best_lr, best = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else math.nan
    gap = best - second if math.isfinite(best) and math.isfinite(second) else math.nan
    above = best - floor if math.isfinite(best) else math.nan
    if not math.isfinite(best):
        separated, reason = False, "no candidate evaluated"
    elif above < min_gap:
        separated = False
        reason = f"best {best:.1f} is within {min_gap:g} mIoU of the blind floor ({floor:.1f})"
    elif len(ranked) > 1 and not gap >= min_gap:
        separated = False
        reason = (
            f"best {best:.1f} and second best {_num(second)} differ by {_num(gap)} "
            f"< {min_gap:g} mIoU"
        )
    else:
        separated = True
        reason = (
            f"best {best:.1f} leads the second best by {_num(gap)} mIoU and the blind floor by "
            f"{above:.1f} (threshold {min_gap:g})"
        )
    return {
        "chosen": float(best_lr),
        "best": best,
        "second": second,
        "gap": gap,
        "above_floor": above,
        "separated": separated,
        "reason": reason,
        "min_gap": min_gap,
    }


def _num(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else NA


def _finite(value: float | None) -> float:
    if value is None or not math.isfinite(value):
        return float("-inf")
    return float(value)


def _stats(values: list[float]) -> dict[str, float]:
    """Mean, spread (std) and count of the finite values (NaN: a unit the ledger lacks)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


# --- finding a run's files: its own directory, else the copies under <out>/ledgers ---


def copy_name(rel: str) -> str:
    """The name of a run's copies under `ledgers/`: `ARM_seedS` for `runs/ARM/seedS`, the run
    path with `/` -> `_` otherwise (`sweep_ARM_lr3e-04`)."""
    parts = Path(rel).parts
    if len(parts) == 3 and parts[0] == "runs":
        return f"{parts[1]}_{parts[2]}"
    return "_".join(parts)


def find_ledger(out: Path, rel: str) -> Path | None:
    """A run's ledger: `<out>/<rel>/metrics.jsonl`, else its copy `ledgers/NAME.jsonl[.gz]`."""
    for path in (
        out / rel / "metrics.jsonl",
        out / "ledgers" / f"{copy_name(rel)}.jsonl",
        out / "ledgers" / f"{copy_name(rel)}.jsonl.gz",
    ):
        if path.is_file():
            return path
    return None


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL ledger, gzipped or not."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    else:
        text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_run_config(out: Path, rel: str) -> dict[str, Any] | None:
    """A run's saved config.yaml (or its copy `ledgers/NAME.config.yaml`) as a plain mapping."""
    import yaml

    for path in (out / rel / "config.yaml", out / "ledgers" / f"{copy_name(rel)}.config.yaml"):
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
    return None


# --- each arm's protocol ---


def config_from_overrides(overrides: list[str]) -> dict[str, Any]:
    """The nested mapping that `key=value` overrides set (values read as YAML), in order."""
    import yaml

    config: dict[str, Any] = {}
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep:
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = config
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return config


def _get(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _option_default(objective: str | None, name: str) -> Any:
    """The default of an objective option (None: the objective does not take it)."""
    try:
        from trainer.objectives.registry import get_objective_spec

        spec = get_objective_spec(objective or "")
        return spec.option_default(name) if name in spec.options() else None
    except (ImportError, ValueError, KeyError):
        return None


def completions_per_prompt(protocol: dict[str, Any]) -> int | None:
    """An arm's completions per prompt in the completions view (`arm_protocol`): its sampled
    rows, or for an arm that samples nothing its training rows."""
    sampling = objective_rows(protocol["objective"])[0]
    return protocol["samples_per_prompt"] if sampling else protocol["target_rows_per_prompt"]


def arm_protocol(
    config: dict[str, Any] | None,
    overrides: list[str],
    lr: float,
    records: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What an arm does per step, from its run's config.yaml (else from the compare.json
    overrides, with n/a for what they leave unset), and what its ledger measured: prompts per
    step, samples per prompt (+ ground-truth rows), PPO epochs and mini-batches, the KL
    coefficient and the other objective options, reward extras, the lr and its schedule."""
    source = "config.yaml"
    if config is None:
        config = config_from_overrides(overrides)
        source = "compare.json overrides (config.yaml not kept; unset keys n/a)"
    objective = _get(config, "trainer.objective")
    if objective is None and records:
        objective = records[0].get("objective")
    sampling, ground_truth, teacher = objective_rows(objective)
    prompts = _get(config, "trainer.prompts_per_step")
    n = _get(config, "rollout.n")
    kwargs = _get(config, "trainer.objective_kwargs")
    kwargs = dict(kwargs) if isinstance(kwargs, dict) else ({} if source == "config.yaml" else None)
    samples_per_prompt = (int(n) if n is not None else None) if sampling else 0
    if teacher == "answers":  # sequence-level KD: the teacher's answers are the targets
        target_rows, target_kind = int((kwargs or {}).get("teacher_samples", 1)), "teacher answer"
    else:
        target_rows = 1 if ground_truth in ("per_group", "only") else 0
        target_kind = "ground-truth row"
    rows = (
        int(prompts) * (samples_per_prompt + target_rows)
        if prompts is not None and samples_per_prompt is not None
        else None
    )
    legacy_filter = _get(config, "reward.dynamic_filtering")  # before trainer.objective_kwargs
    if kwargs is not None and legacy_filter is not None:
        kwargs.setdefault("filter_zero_variance", legacy_filter)
    kl_coef = (kwargs or {}).get("kl_coef", _option_default(objective, "kl_coef"))
    kl_estimator = (kwargs or {}).get("kl_estimator", _option_default(objective, "kl_estimator"))
    records = records or []
    updates = [float(r["updates"]) for r in records if r.get("updates") is not None]
    shares = []
    for r in records:
        if r.get("zero_variance_share") is not None:
            shares.append(float(r["zero_variance_share"]))
        elif r.get("zero_variance_groups") is not None and r.get("groups"):
            shares.append(float(r["zero_variance_groups"]) / float(r["groups"]))
    lrs = [float(r["lr"]) for r in records if r.get("lr") is not None]
    return {
        "source": source,
        "objective": objective,
        "prompts_per_step": prompts,
        "samples_per_prompt": samples_per_prompt,
        "target_rows_per_prompt": target_rows,  # trained on, not sampled by the student
        "target_rows_kind": target_kind if target_rows else None,
        "rows_per_step": rows,
        "ppo_epochs": _get(config, "trainer.ppo_epochs"),
        "ppo_mini_batches": _get(config, "trainer.ppo_mini_batches"),
        "kl_coef": kl_coef,
        "kl_estimator": kl_estimator if kl_coef else None,
        "objective_kwargs": kwargs,
        "format_weight": _get(config, "reward.format_weight"),
        "eos_weight": _get(config, "reward.eos_weight"),
        "lr": lr,
        "schedule": _get(config, "learner.schedule"),
        "warmup_steps": _get(config, "learner.warmup_steps"),
        "measured": {
            "updates_per_step": _stats(updates),
            "zero_variance_share": _stats(shares),
            "lr_max": max(lrs) if lrs else math.nan,
        },
    }


# --- the summary ---


def _sweep_stages(
    out: Path, name: str, arm: dict[str, Any], settings: dict[str, Any], floor: float
) -> list[dict[str, Any]]:
    """An arm's lr-sweep stages (the sweep, then its extension if any) with each candidate's
    final val mIoU, curve (when its ledger is still there) and the verdict."""
    from launch.compare import lr_tag

    min_gap = float(settings.get("sweep_min_gap", DEFAULT_SWEEP_MIN_GAP))
    stages = arm.get("sweep_stages")
    if stages is None:  # a compare.json from before sweep stages were recorded
        finals = arm.get("lr_sweep") or {}
        if not finals:
            return []
        runs = {lr: f"sweep/{name}/{lr_tag(float(lr))}" for lr in finals}
        stages = [{"budget": settings.get("sweep_budget"), "final": finals, "runs": runs}]
    out_stages = []
    for stage in stages:
        curves: dict[str, Any] = {}
        for lr, rel in stage.get("runs", {}).items():
            path = find_ledger(out, rel)
            curves[lr] = run_curve(read_records(path)) if path is not None else None
        finals = {lr: (math.nan if v is None else float(v)) for lr, v in stage["final"].items()}
        out_stages.append(
            {
                "budget": stage.get("budget"),
                "seed": settings.get("seeds", [0])[0],
                "final": finals,
                "runs": dict(stage.get("runs", {})),
                "curves": curves,
                "verdict": sweep_verdict(finals, floor, min_gap),
            }
        )
    return out_stages


def _choice_text(arm: dict[str, Any], stages: list[dict[str, Any]]) -> str:
    if arm.get("chosen_by"):
        return str(arm["chosen_by"])
    if stages:
        last = stages[-1]
        verdict = last["verdict"]
        return (
            f"the highest final val mIoU of the sweep at {last['budget']} "
            f"(seed {last['seed']}; ties to the smaller lr)"
            + ("" if verdict["separated"] else f"; NOT separated: {verdict['reason']}")
        )
    return "no sweep (a single candidate, or --sweep-budget none: the middle candidate)"


def summarise(out: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Curves in every budget unit, protocol, phases, finals, time-to-target and lr sweeps of
    every arm (mean and spread over seeds), the ratios to GRPO, and warnings."""
    settings = state.get("settings", {})
    goals = targets(state["references"])
    floor = float(state["references"]["floor"])
    arms: dict[str, Any] = {}
    warnings: list[str] = []
    for name, arm in state["arms"].items():
        runs: dict[str, list[dict[str, Any]]] = {}
        for seed, rel in arm["runs"].items():
            path = find_ledger(out, rel)
            if path is None:
                raise FileNotFoundError(
                    f"{name} seed {seed}: no ledger at {out / rel / 'metrics.jsonl'} nor under "
                    f"{out / 'ledgers'}"
                )
            runs[seed] = read_records(path)
        config = next(
            (c for rel in arm["runs"].values() if (c := read_run_config(out, rel)) is not None),
            None,
        )
        overrides = [
            *arm.get("overrides", []),
            *settings.get("overrides", []),
            *arm.get("extra_overrides", []),
        ]
        all_records = [r for records in runs.values() for r in records]
        protocol = arm_protocol(config, overrides, arm["lr"], all_records)
        n = completions_per_prompt(protocol)
        curves = {seed: run_curve(records, n) for seed, records in runs.items()}
        totals = {seed: run_totals(records, n) for seed, records in runs.items()}
        phases = {seed: phase_seconds(records) for seed, records in runs.items()}
        evaluated = [c for c in curves.values() if c["mIoU"]]
        reach: dict[str, Any] = {}
        for label, goal in goals.items():
            hits = [compute_to_target(c, goal) for c in curves.values()]
            reached = [h for h in hits if h is not None]
            reach[label] = {
                "reached": len(reached),
                "runs": len(hits),
                **{axis: _stats([h[axis] for h in reached]) for axis in AXES},
            }
        stages = _sweep_stages(out, name, arm, settings, floor)
        for stage in stages:
            if not stage["verdict"]["separated"]:
                warnings.append(
                    f"{name}: the lr sweep at {stage['budget']} is not separated "
                    f"({stage['verdict']['reason']})"
                )
        names = sorted({p for run in phases.values() for p in run})
        unit = "completions"
        if not objective_rows(protocol["objective"])[0]:
            unit = f"training rows ({protocol['target_rows_kind'] or 'target row'}s)"
        arms[name] = {
            "lr": arm["lr"],
            "lr_sweep": arm.get("lr_sweep", {}),
            "sweep": stages,
            "lr_choice": _choice_text(arm, stages),
            "notes": arm.get("notes", ""),
            "overrides": arm.get("overrides", []) + arm.get("extra_overrides", []),
            "protocol": protocol,
            "completions_unit": unit,
            "curves": curves,
            "phases": {p: _stats([run.get(p, 0.0) for run in phases.values()]) for p in names},
            "final_mIoU": _stats([c["mIoU"][-1] for c in evaluated]),
            "final_parse_rate": _stats([c["parse_rate"][-1] for c in evaluated]),
            "train_seconds": _stats([c["train_seconds"][-1] for c in evaluated]),
            "totals": {axis: _stats([t[axis] for t in totals.values()]) for axis in AXES},
            "load_avg_1m": _stats(
                [r["load_avg_1m"] for run in runs.values() for r in run if "load_avg_1m" in r]
            ),
            "targets": reach,
        }
    ratios = _ratios_to_baseline(arms)
    return {
        "references": state["references"],
        "targets": goals,
        "axes": dict(AXES),
        "arms": arms,
        "ratios": ratios,
        "warnings": warnings,
    }


def ratio_to_baseline(
    mine: dict[str, Any], theirs: dict[str, Any], my_total: dict, their_total: dict
) -> dict[str, Any]:
    """One arm's time-to-target over GRPO's in one unit (`mine`, `theirs`: a target's reach
    entries for that unit, with `reached`; `*_total`: what each run spent in the unit).

    Both reached: mean over mean, with a spread propagated from both seed spreads (relative
    spreads added in quadrature). GRPO never reached it: an upper bound, the arm's mean over
    what GRPO spent in its whole budget. The arm never reached it while GRPO did: a lower bound,
    the arm's whole budget over GRPO's mean. A unit the ledgers cannot measure: n/a."""
    a, g = mine["stats"], theirs["stats"]
    if mine["reached"] == 0:
        if theirs["reached"] and g["n"] and my_total["n"] and g["mean"] > 0:
            return {"ratio": my_total["mean"] / g["mean"], "spread": None, "kind": "lower bound"}
        return {"ratio": None, "spread": None, "kind": "not reached"}
    if a["n"] == 0:
        return {"ratio": None, "spread": None, "kind": NA}
    if theirs["reached"] == 0:
        if not their_total["n"] or their_total["mean"] <= 0:
            return {"ratio": None, "spread": None, "kind": NA}
        bound = a["mean"] / their_total["mean"]
        return {"ratio": bound, "spread": None, "kind": "upper bound (GRPO not reached)"}
    if g["n"] == 0 or g["mean"] <= 0:
        return {"ratio": None, "spread": None, "kind": NA}
    ratio = a["mean"] / g["mean"]
    relative = math.hypot(a["std"] / a["mean"] if a["mean"] else 0.0, g["std"] / g["mean"])
    return {"ratio": ratio, "spread": ratio * relative, "kind": "ratio"}


def _ratios_to_baseline(arms: dict[str, Any]) -> dict[str, Any]:
    """Every arm's time-to-target over GRPO's, per target and budget unit."""
    base = arms.get(BASELINE)
    if base is None:
        return {}
    out: dict[str, Any] = {}
    for name, arm in arms.items():
        if name == BASELINE:
            continue
        out[name] = {}
        for label, reach in arm["targets"].items():
            theirs = base["targets"][label]
            out[name][label] = {
                axis: ratio_to_baseline(
                    {"reached": reach["reached"], "stats": reach[axis]},
                    {"reached": theirs["reached"], "stats": theirs[axis]},
                    arm["totals"][axis],
                    base["totals"][axis],
                )
                for axis in AXES
            }
    return out


# --- plots ---


def _mean_curve(curves: list[dict[str, list[float]]], axis: str) -> tuple[list[float], list[float]]:
    """Mean over seeds, point by point up to the shortest run (evaluations are every N steps)."""
    length = min((len(c["mIoU"]) for c in curves), default=0)
    xs = [float(np.mean([c[axis][i] for c in curves])) for i in range(length)]
    ys = [float(np.mean([c["mIoU"][i] for c in curves])) for i in range(length)]
    return xs, ys


def plot_data(summary: dict[str, Any]) -> dict[str, Any]:
    """Exactly the numbers drawn in the plots (null: a unit the ledger cannot measure)."""
    means = {
        name: {
            axis: dict(
                zip(("x", "mIoU"), _mean_curve(list(arm["curves"].values()), axis), strict=True)
            )
            for axis in AXES
        }
        for name, arm in summary["arms"].items()
    }
    sweeps = {
        name: [
            {
                "budget": stage["budget"],
                "x_axis": _sweep_axis(stage["budget"]),
                "curves": {lr: c for lr, c in stage["curves"].items() if c is not None},
                "final": stage["final"],
                "separated": stage["verdict"]["separated"],
            }
            for stage in arm["sweep"]
        ]
        for name, arm in summary["arms"].items()
        if arm["sweep"]
    }
    return {
        "references": summary["references"],
        "axes": dict(AXES),
        "completions_unit": {n: a["completions_unit"] for n, a in summary["arms"].items()},
        "curves": {name: arm["curves"] for name, arm in summary["arms"].items()},
        "means": means,
        "sweeps": sweeps,
        "phases": {
            name: {p: s["mean"] for p, s in arm["phases"].items()}
            for name, arm in summary["arms"].items()
        },
    }


def _budget_amount(budget: str | None) -> float:
    """A budget's seconds, FLOPs, prompts or completions (`wallclock=60s` -> 60.0); NaN when
    unreadable."""
    from launch.compare import parse_budget

    try:
        return parse_budget(str(budget)).value
    except ValueError:
        return math.nan


def _sweep_axis(budget: str | None) -> str:
    text = str(budget or "")
    if text.startswith("completions"):
        return "completions"
    if text.startswith("flops"):
        return "learner_flops"
    return "samples_seen" if text.startswith("samples") else "train_seconds"


def _finite_xy(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if _isfinite(x) and _isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _isfinite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _plots(out: Path, data: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    colours = plt.get_cmap("tab10")
    refs = data["references"]
    for axis, label in AXES.items():
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for i, (name, curves) in enumerate(data["curves"].items()):
            colour = colours(i % 10)
            for curve in curves.values():
                ax.plot(*_finite_xy(curve[axis], curve["mIoU"]), color=colour, alpha=0.35, lw=1)
            mean = data["means"][name][axis]
            xs, ys = _finite_xy(mean["x"], mean["mIoU"])
            tag = f"{name} (mean of {len(curves)})" if xs else f"{name} ({NA})"
            if axis == "completions" and data["completions_unit"][name] != "completions":
                tag += ", training rows"
            ax.plot(xs, ys, color=colour, lw=2.2, label=tag)
        ax.axhline(refs["teacher"], color="black", ls="--", lw=1, label="teacher")
        ax.axhline(refs["floor"], color="grey", ls=":", lw=1, label="blind floor")
        ax.set_xlabel(label)
        ax.set_ylabel("val mIoU")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the data
        ax.grid(alpha=0.3)
        fig.tight_layout()
        name = f"val_miou_vs_{axis}.png"
        _save_figure(fig, out / name)
        plt.close(fig)
        files.append(name)
    if data["sweeps"]:
        files.append(_sweep_plot(out, data, plt))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    arms = list(data["phases"])
    phases = sorted({p for values in data["phases"].values() for p in values})
    bottom = np.zeros(len(arms))
    for j, phase in enumerate(phases):
        heights = np.array([data["phases"][a].get(phase, 0.0) for a in arms])
        ax.bar(arms, heights, bottom=bottom, label=phase, color=colours(j % 10))
        bottom += heights
    ax.set_ylabel("seconds per run (mean over seeds)")
    ax.set_title("time per phase")
    ax.legend(fontsize=7)
    plt.setp(ax.get_xticklabels(), rotation=20)
    fig.tight_layout()
    _save_figure(fig, out / "time_per_phase.png")
    plt.close(fig)
    files.append("time_per_phase.png")
    return files


def _sweep_plot(out: Path, data: dict[str, Any], plt: Any) -> str:
    """One panel per swept arm: each candidate lr's val curve (the extension dashed), its final
    value marked where no ledger is left."""
    sweeps = data["sweeps"]
    cols = min(3, len(sweeps))
    rows = math.ceil(len(sweeps) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    refs = data["references"]
    for k, (name, stages) in enumerate(sweeps.items()):
        ax = axes[k // cols][k % cols]
        lrs = sorted({lr for stage in stages for lr in stage["final"]}, key=float)
        for s, stage in enumerate(stages):
            style = "-" if s == 0 else "--"
            for lr in lrs:
                colour = colours(lrs.index(lr) % 10)
                label = f"lr {float(lr):g} ({stage['budget']})"
                curve = stage["curves"].get(lr)
                if curve is not None:
                    xs, ys = _finite_xy(curve[stage["x_axis"]], curve["mIoU"])
                    ax.plot(xs, ys, style, color=colour, lw=1.5, label=label)
                elif lr in stage["final"] and _isfinite(stage["final"][lr]):
                    # No ledger left: the final value, at the end of the stage's budget.
                    x = _budget_amount(stage["budget"])
                    ax.plot([x], [stage["final"][lr]], "o", color=colour, label=label + ", final")
        ax.axhline(refs["teacher"], color="black", ls="--", lw=0.8)
        ax.axhline(refs["floor"], color="grey", ls=":", lw=0.8)
        verdicts = ["separated" if st["separated"] else "not separated" for st in stages]
        ax.set_title(f"{name}: lr sweep ({', then '.join(verdicts)})", fontsize=9)
        ax.set_xlim(left=0)
        ax.set_xlabel(AXES[stages[-1]["x_axis"]], fontsize=7)
        ax.set_ylabel("val mIoU", fontsize=7)
        ax.legend(fontsize=6, loc="lower right")
        ax.grid(alpha=0.3)
    for k in range(len(sweeps), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.tight_layout()
    _save_figure(fig, out / "lr_sweep.png")
    plt.close(fig)
    return "lr_sweep.png"


def _save_figure(fig: Any, path: Path) -> None:
    tmp = path.with_name(".tmp_" + path.name)
    fig.savefig(tmp, dpi=110, format="png")
    os.replace(tmp, path)


# --- REPORT.md ---


def _fmt(stats: dict[str, float], digits: int = 1, scale: float = 1.0) -> str:
    if not stats["n"]:
        return NA
    mean, std = stats["mean"] / scale, stats["std"] / scale
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if stats["n"] > 1 else f"{mean:.{digits}f}"


def _mean_only(stats: dict[str, float], digits: int, scale: float = 1.0) -> str:
    """A per-step quantity's mean over every step of every seed."""
    return f"{stats['mean'] / scale:.{digits}f}" if stats["n"] else NA


def _value(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NA
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _ratio_text(ratio: dict[str, Any] | None) -> str:
    if ratio is None or ratio["ratio"] is None:
        return ""
    if ratio["kind"] == "lower bound":
        return f" (> {ratio['ratio']:.2f} x GRPO)"
    if ratio["kind"].startswith("upper"):
        return f" (< {ratio['ratio']:.2f} x GRPO)"
    spread = f" ± {ratio['spread']:.2f}" if ratio.get("spread") else ""
    return f" ({ratio['ratio']:.2f}{spread} x GRPO)"


def _protocol_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        "## Each arm's protocol",
        "",
        "Read from each arm's saved `config.yaml` (the first seed's run); the columns marked "
        "(ledger) from its ledgers (means over every step of every seed). Samples per prompt "
        "are the sampled completions (rollout.n); ground-truth rows are trained on but not "
        "generated. KL coef: for GRPO / TempSamp-R1 the "
        "penalty to the initial student, for the OPD arms the scale of the reverse KL to the "
        "teacher (the objective's default where the config leaves it unset; — : none).",
        "",
        "| arm | objective | prompts/step | samples/prompt | rows/step | PPO epochs x "
        "mini-batches | KL coef (estimator) | objective options | reward extras "
        "(format, eos) | lr (schedule, warmup) | updates/step (ledger) | zero-variance groups % "
        "(ledger) | peak lr (ledger) | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in summary["arms"].items():
        p = arm["protocol"]
        samples = _value(p["samples_per_prompt"])
        if p["target_rows_per_prompt"]:
            plural = "s" if p["target_rows_per_prompt"] > 1 else ""
            samples += f" + {p['target_rows_per_prompt']} {p['target_rows_kind']}{plural}"
        kl = "—" if p["kl_coef"] is None else _value(p["kl_coef"])
        if p["kl_coef"] and p["kl_estimator"] is not None:
            kl += f" ({p['kl_estimator']})"
        options = p["objective_kwargs"]
        options_text = (
            NA
            if options is None
            else (", ".join(f"{k}={_value(v)}" for k, v in options.items()) or "defaults")
        )
        measured = p["measured"]
        share = measured["zero_variance_share"]
        lines.append(
            f"| {name} | {_value(p['objective'])} | {_value(p['prompts_per_step'])} | {samples} | "
            f"{_value(p['rows_per_step'])} | {_value(p['ppo_epochs'])} x "
            f"{_value(p['ppo_mini_batches'])} | {kl} | {options_text} | "
            f"{_value(p['format_weight'])}, {_value(p['eos_weight'])} | {p['lr']:g} "
            f"({_value(p['schedule'])}, {_value(p['warmup_steps'])}) | "
            f"{_mean_only(measured['updates_per_step'], 2)} | "
            f"{_mean_only(share, 1, 0.01)} | "
            f"{_value(measured['lr_max'])} | {p['source']} |"
        )
    return lines


def _sweep_lines(summary: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    min_gap = float(settings.get("sweep_min_gap", DEFAULT_SWEEP_MIN_GAP))
    extend = settings.get("sweep_extend")
    lines = [
        "## Learning-rate sweeps",
        "",
        f"Each candidate lr runs once (seed {next(iter(settings.get('seeds', [0])))}) at the sweep "
        f"budget ({settings.get('sweep_budget') or 'none'}); the highest final val mIoU wins, ties "
        f"to the smaller lr. A sweep is **separated** when its winner leads the second best by at "
        f"least {min_gap:g} mIoU and sits at least {min_gap:g} above the blind floor "
        f"(`--sweep-min-gap`); otherwise the winner is noise and the sweep is flagged "
        "**not separated**. "
        + (
            f"An unseparated sweep is rerun once at {extend} (`--sweep-extend`) and the winner "
            "taken there."
            if extend
            else "`--sweep-extend BUDGET` reruns an unseparated sweep once at a longer budget."
        ),
        "",
        "| arm | sweep budget | final val mIoU per lr | best - second | best - floor | verdict |",
        "|---|---|---|---|---|---|",
    ]
    any_sweep = False
    for name, arm in summary["arms"].items():
        for stage in arm["sweep"]:
            any_sweep = True
            verdict = stage["verdict"]
            ordered = sorted(stage["final"].items(), key=lambda kv: float(kv[0]))
            finals = ", ".join(
                f"{float(lr):g}: {_num(value)}"
                + (" **(best)**" if float(lr) == verdict["chosen"] else "")
                for lr, value in ordered
            )
            text = "separated" if verdict["separated"] else "**not separated**"
            lines.append(
                f"| {name} | {stage['budget']} | {finals} | {_num(verdict['gap'])} | "
                f"{_num(verdict['above_floor'])} | {text}: {verdict['reason']} |"
            )
    if not any_sweep:
        lines.append("| (no arm was swept) | | | | | |")
    lines += ["", "Chosen lr per arm:", ""]
    for name, arm in summary["arms"].items():
        lines.append(f"- **{name}**: {arm['lr']:g} — {arm['lr_choice']}.")
    return lines


def markdown(summary: dict[str, Any], state: dict[str, Any], plots: list[str]) -> str:
    """The human-readable report."""
    settings = state["settings"]
    refs = summary["references"]
    lines = [
        "# Objective comparison",
        "",
        f"Base config `{settings['config']}`, budget **{settings['budget']}** per run "
        f"(training wall-clock excludes evaluation), seeds {list(settings['seeds'])}, "
        f"lr sweep budget {settings['sweep_budget'] or 'none'} (seed {settings['seeds'][0]}). "
        f"Start: the **{settings.get('start', 'floor')}** student. "
        "Every arm starts from the same student, sees the same data order for a seed and runs "
        "on the same machine, one run at a time; each arm keeps its own protocol (prompts per "
        "step, samples per prompt, PPO epochs, options: the protocol table below).",
        "",
        f"Reference points (val): blind floor **{refs['floor']:.1f}**, teacher "
        f"**{refs['teacher']:.1f}** mIoU. Targets = floor + f x (teacher - floor): "
        + ", ".join(f"{k} = {v:.1f}" for k, v in summary["targets"].items())
        + ".",
        "",
    ]
    if summary["warnings"]:
        lines += ["**Warnings:**", ""]
        lines += [f"- {w}" for w in summary["warnings"]]
        lines.append("")
    headers = [AXIS_HEADERS[axis][0] for axis in AXES]
    lines += [
        "## Final validation metrics, and what each arm spent of its budget",
        "",
        "| arm | lr | val mIoU | parse rate % | " + " | ".join(headers) + " | seeds | "
        "machine load (1-min avg) |",
        "|---|---|---|---|" + "---|" * len(headers) + "---|---|",
    ]
    for name, arm in summary["arms"].items():
        spent = [
            _fmt(arm["totals"][axis], AXIS_HEADERS[axis][1], AXIS_HEADERS[axis][2])
            + (" †" if axis == "completions" and arm["completions_unit"] != "completions" else "")
            for axis in AXES
        ]
        lines.append(
            f"| {name} | {arm['lr']:g} | {_fmt(arm['final_mIoU'])} | "
            f"{_fmt(arm['final_parse_rate'])} | " + " | ".join(spent) + " | "
            f"{arm['final_mIoU']['n']} | {_fmt(arm['load_avg_1m'])} |"
        )
    lines += [
        "",
        "## Time to target in every budget unit",
        "",
        "Mean ± spread over the seeds that reached the target; in brackets the ratio to GRPO's "
        "in the same unit (mean over mean, the spread propagated from both; `<`: GRPO never "
        "reached the target, so the ratio to its whole budget is an upper bound; `>`: the arm "
        "never reached it, so its whole budget over GRPO's time is a lower bound). Completions "
        "are the sampled rows, (prompts - skipped) x rollout.n per step, dropped groups "
        "included; † an arm that samples nothing (SFT: ground-truth rows; sequence-level KD: the "
        "teacher's answers) counts its training rows there instead. "
        "Distinct prompts count each training prompt id once.",
        "",
        "| arm | final val mIoU | target | reached | " + " | ".join(headers) + " |",
        "|---|---|---|---|" + "---|" * len(headers),
    ]
    for name, arm in summary["arms"].items():
        for label, reach in arm["targets"].items():
            ratios = summary["ratios"].get(name, {}).get(label, {})
            cells = []
            for axis in AXES:
                _, digits, scale = AXIS_HEADERS[axis]
                ratio = ratios.get(axis)
                if not reach["reached"]:
                    cell = "not reached" + _ratio_text(ratio)
                else:
                    cell = _fmt(reach[axis], digits, scale)
                    if name == BASELINE:
                        cell += " (baseline)" if cell != NA else ""
                    elif cell != NA:
                        cell += _ratio_text(ratio)
                if axis == "completions" and arm["completions_unit"] != "completions":
                    cell += " †"
                cells.append(cell)
            reached = f"{reach['reached']}/{reach['runs']}"
            lines.append(
                f"| {name} | {_fmt(arm['final_mIoU'])} | {label} "
                f"({summary['targets'][label]:.1f}) | {reached} | " + " | ".join(cells) + " |"
            )
    lines += [""]
    lines += _protocol_lines(summary)
    lines += [""]
    lines += _sweep_lines(summary, settings)
    lines += ["", "## What each arm is", ""]
    for name, arm in summary["arms"].items():
        lines.append(f"- **{name}** — {arm['notes']}. Overrides: `{' '.join(arm['overrides'])}`.")
    lines += ["", "## Time per phase (seconds per run, mean over seeds)", ""]
    phases = sorted({p for a in summary["arms"].values() for p in a["phases"]})
    lines.append("| arm | " + " | ".join(phases) + " |")
    lines.append("|---|" + "---|" * len(phases))
    for name, arm in summary["arms"].items():
        cells = [_fmt(arm["phases"][p], 1) if p in arm["phases"] else "—" for p in phases]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Plots", ""]
    lines += [f"![{p}]({p})" for p in plots]
    lines += [
        "",
        "Raw ledgers and configs: `ledgers/` (one JSONL and one config.yaml per run, the sweep "
        "runs' too); the plotted numbers: `plot_data.json`; the tables: `results.json`.",
        "",
    ]
    return "\n".join(lines)


def _copy_run_files(out: Path, rels: list[str]) -> None:
    """Copy each run's ledger and config under `ledgers/` (kept when the run directories go)."""
    ledgers = out / "ledgers"
    ledgers.mkdir(exist_ok=True)
    for rel in rels:
        name = copy_name(rel)
        for source, target in (
            (out / rel / "metrics.jsonl", ledgers / f"{name}.jsonl"),
            (out / rel / "config.yaml", ledgers / f"{name}.config.yaml"),
        ):
            if source.is_file():
                shutil.copyfile(source, target)


def write_report(out: str | Path) -> dict[str, Any]:
    """Rebuild every report file of `<out>` from compare.json and the ledgers; return the data.
    Prints a warning for every lr sweep that did not separate its candidates."""
    out = Path(out)
    state = json.loads((out / "compare.json").read_text())
    summary = summarise(out, state)
    rels = [rel for arm in state["arms"].values() for rel in arm["runs"].values()]
    rels += [
        rel
        for arm in summary["arms"].values()
        for stage in arm["sweep"]
        for rel in stage["runs"].values()
    ]
    _copy_run_files(out, rels)
    data = plot_data(summary)
    _write(out / "plot_data.json", json.dumps(_clean(data), indent=1))
    plots = _plots(out, data)
    _write(out / "results.json", json.dumps(_clean(summary), indent=1))
    _write(out / "REPORT.md", markdown(summary, state, plots))
    for warning in summary["warnings"]:
        print(f"[compare] WARNING: {warning}")
    return summary


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(".tmp_" + path.name)
    tmp.write_text(text)
    os.replace(tmp, path)
