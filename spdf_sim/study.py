"""The SPDF study at laptop scale: sparse pre-training, dense fine-tuning on tasks, one table.

``spdf-sim study CONFIG`` pre-trains a small GPT on a text corpus at each
sparsity and fine-tunes each pre-trained model dense on every task. It scores
BLEU on each task's evaluation split and writes the paper-style table (FLOPs
per phase, reduction, projected hours, BLEU), then the same table projected
analytically at paper scale.

Every piece of work lands in its own folder under ``out_dir``, and a finished
piece is never redone, so an interrupted study continues where it stopped. An
unfinished training run resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import hwmodels
from spdf_sim.errors import SpdfSimError
from workloads.tasks.registry import DATA_ROOT_VARIABLE

log = logging.getLogger(__name__)

SECONDS_PER_HOUR = 3600.0


@dataclass
class StudyConfig:
    """The study's settings, read from TOML; ``path`` is where they came from."""

    path: Path
    table: dict

    def __getitem__(self, key: str):
        return self.table[key]

    @property
    def out_dir(self) -> Path:
        return Path(self.table["out_dir"])

    @property
    def data_root(self) -> Path:
        root = self.table.get("data_root") or os.environ.get(DATA_ROOT_VARIABLE)
        if not root:
            raise SpdfSimError(f"{self.path}: data_root is empty and {DATA_ROOT_VARIABLE} is not "
                               f"set: give the folder that holds e2e/, webnlg/, dart/ and the corpus")
        if not Path(root).is_dir():
            raise SpdfSimError(f"{self.path}: data root {root} is not a folder: give the folder "
                               f"that holds e2e/, webnlg/, dart/ and the corpus")
        return Path(root)


REQUIRED = {"out_dir": str, "sparsities": list, "tasks": dict, "hw": list, "model": dict,
            "tokenizer": dict, "corpus": dict, "pretrain": dict, "finetune": dict,
            "evaluation": dict, "paper": dict}


def load_study_config(path, overrides: dict | None = None) -> StudyConfig:
    """Read a study TOML file and check that every section is present with the right type."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpdfSimError(f"study config {path} could not be read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SpdfSimError(f"{path}: invalid TOML: {error}") from None
    table.update(overrides or {})
    for key, kind in REQUIRED.items():
        if not isinstance(table.get(key), kind):
            raise SpdfSimError(f"{path}: key {key!r} is missing or not a {kind.__name__}; see "
                               f"spdf_sim/configs/study-small.toml for every key")
    for level in table["sparsities"]:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 <= level < 1:
            raise SpdfSimError(f"{path}: sparsity {level!r} is invalid: give fractions of zero "
                               f"weights in [0, 1)")
    for name in table["hw"]:
        try:
            hwmodels.load(name)
        except hwmodels.MachineError as error:
            raise SpdfSimError(f"{path}: hw: {error}") from None
    if 0 not in table["sparsities"] and 0.0 not in table["sparsities"]:
        raise SpdfSimError(f"{path}: sparsities must include 0, the dense baseline the table "
                           f"compares against")
    return StudyConfig(path, table)


# Data ------------------------------------------------------------------------

def prepare_data(config: StudyConfig):
    """Train (once) the study's BPE tokenizer and encode (once) its corpus; return both."""
    from spdf_sim.training.data import encode_documents
    from spdf_sim.training.tokenizer import BpeTokenizer, load_tokenizer
    from workloads.corpus import read_corpus

    folder = config.out_dir / "data"
    documents = _corpus_documents(config, read_corpus)
    if not (folder / "tokenizer.json").exists():
        texts = documents + [text for task in config["tasks"] for text in _task_texts(config, task)]
        # Saved only once every input has been read, so bad input leaves no empty folders.
        BpeTokenizer.train(texts, config["tokenizer"]["vocab"]).save(folder)
    tokenizer = load_tokenizer(folder)
    if tokenizer.vocab_size > config["tokenizer"]["vocab"]:
        raise SpdfSimError(f"tokenizer {folder / 'tokenizer.json'} has {tokenizer.vocab_size} "
                           f"tokens, more than tokenizer.vocab = {config['tokenizer']['vocab']} in "
                           f"{config.path}: delete {folder} so the study trains a new one")

    tokens_path = folder / "corpus.npy"
    if not tokens_path.exists():
        _save_atomic(tokens_path, encode_documents(documents, tokenizer))
    return tokenizer, np.load(tokens_path)


def _corpus_documents(config: StudyConfig, read_corpus) -> list[str]:
    from workloads import WorkloadError

    corpus = config["corpus"]
    path = config.data_root / corpus["path"]
    try:
        documents = read_corpus(path)
    except WorkloadError as error:
        raise SpdfSimError(f"{config.path}: {error}") from None
    text = "\n\n".join(documents)[: corpus["max_chars"]]
    # Split the cut text back into documents of about 20k characters, so the
    # tokenizer trains on pieces and encoding can be batched.
    return [text[start:start + 20_000] for start in range(0, len(text), 20_000)]


def _task_texts(config: StudyConfig, task: str) -> list[str]:
    from spdf_sim.training.data import example_texts

    return example_texts(_examples(config, task, config["tasks"][task]["train"]))


def _examples(config: StudyConfig, task: str, split: str):
    from workloads import WorkloadError
    from workloads.tasks.registry import load_task

    try:
        examples = load_task(task, split, config.data_root)
    except WorkloadError as error:
        raise SpdfSimError(f"{config.path}: {error}") from None
    return examples


def _save_atomic(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        np.save(file, array)
    os.replace(temporary, path)


# Training --------------------------------------------------------------------

def run_config(config: StudyConfig, phase: str, sparsity: float, steps: int, out_dir: Path):
    """Build the engine's RunConfig for one pre-training or fine-tuning run of the study."""
    from spdf_sim.training.config import config_from_dict

    model = {**config["model"], "vocab": config["tokenizer"]["vocab"]}
    section = {key: value for key, value in config[phase].items() if key != "steps"}
    idle = {"steps": 0, "batch_size": 1}
    table = {
        "model": model, "sparsity": {"level": sparsity},
        "pretrain": {**section, "steps": steps} if phase == "pretrain" else idle,
        "finetune": {**section, "steps": steps} if phase == "finetune" else idle,
        "data": {"eval_batches": config["evaluation"]["val_batches"]},
        "seed": config.table.get("seed", 1337), "out_dir": str(out_dir),
        "log_interval": 50, "trace_interval": config.table.get("trace_interval", 25),
        "checkpoint_interval": config.table.get("checkpoint_interval", 100),
    }
    return config_from_dict(table, source=str(config.path))


def is_finished(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    except (OSError, ValueError, KeyError, TypeError):
        return False


def train_run(run, sources, run_dir: Path, initial_weights: dict | None = None) -> None:
    """Train one run to its end, resuming it when its directory contains a checkpoint."""
    from spdf_sim.training.engine import Trainer, run_files

    # A run killed before its first checkpoint is started over by the Trainer.
    trainer = Trainer(run, sources, run_dir=run_dir, resume=bool(run_files(run_dir)),
                      progress=False)
    if initial_weights is not None and not trainer.resumed:
        trainer.model.load_state_dict(initial_weights)
    trainer.train()


def pretrain(config: StudyConfig, tokens: np.ndarray, sparsity: float) -> Path:
    """Pre-train at ``sparsity`` on the corpus (or find the finished run); return its directory."""
    from spdf_sim.training.data import TokenStream, split_tokens
    from spdf_sim.training.engine import Sources

    run_dir = config.out_dir / f"pretrain-s{round(100 * sparsity):02d}"
    if is_finished(run_dir):
        return run_dir
    section = config["pretrain"]
    run = run_config(config, "pretrain", sparsity, section["steps"], run_dir)
    context = config["model"]["context"]
    train, val = split_tokens(tokens, config["corpus"]["val_fraction"])
    seed = run.seed
    sources = Sources(pretrain=TokenStream(train, section["batch_size"], context, seed=seed),
                      val={"pretrain": TokenStream(val, section["batch_size"], context,
                                                   seed=seed + 1)})
    _timed(f"pre-training {run_dir.name}", train_run, run, sources, run_dir)
    return run_dir


def finetune(config: StudyConfig, tokenizer, pretrained: Path, sparsity: float, task: str) -> Path:
    """Fine-tune the pre-trained model dense on ``task``; return the run directory."""
    from spdf_sim.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from spdf_sim.training.data import TaskBatches, fitting
    from spdf_sim.training.engine import Sources

    run_dir = config.out_dir / f"finetune-s{round(100 * sparsity):02d}-{task}"
    if is_finished(run_dir):
        return run_dir
    section = config["finetune"]
    splits = config["tasks"][task]
    run = run_config(config, "finetune", 0.0, section["steps"], run_dir)
    context = config["model"]["context"]
    train_examples = fitting(_examples(config, task, splits["train"]), tokenizer, context,
                             f"{task} {splits['train']}")
    # The validation loss uses the task's "val" split where it has one apart from training.
    val_split = splits.get("val", splits["eval"])
    val_examples = fitting(_examples(config, task, val_split), tokenizer, context,
                           f"{task} {val_split}")[:config["evaluation"]["examples"]]
    train = TaskBatches(train_examples, tokenizer, section["batch_size"], context, seed=run.seed)
    val = TaskBatches(val_examples, tokenizer, section["batch_size"], context, seed=run.seed + 1)
    # The fine-tuning run has no pre-training phase, so the pre-training source is never drawn.
    # NOTE: the engine records batch_size * context tokens per step, while these
    # batches are padded only to their longest pair, so the projected fine-tuning
    # cost is that of sequences padded to the full context.
    sources = Sources(pretrain=train, finetune=train, val={"finetune": val})
    weights = load_checkpoint(pretrained / CHECKPOINT_FILE)["model"]
    _timed(f"fine-tuning {run_dir.name}", train_run, run, sources, run_dir, weights)
    return run_dir


def score(config: StudyConfig, tokenizer, run_dir: Path, task: str) -> dict:
    """Score BLEU of the fine-tuned model on the task's evaluation split (cached in scores.json)."""
    path = run_dir / "scores.json"
    if path.exists():
        return json.loads(path.read_text())
    from spdf_sim.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from spdf_sim.training.data import fitting
    from spdf_sim.training.evaluate import score_examples
    from spdf_sim.training.model import GPT

    evaluation = config["evaluation"]
    split = config["tasks"][task]["eval"]
    context = config["model"]["context"]
    examples = fitting(_examples(config, task, split), tokenizer, context,
                       f"{task} {split}")[:evaluation["examples"]]
    run = run_config(config, "finetune", 0.0, 0, run_dir)
    model = GPT(run.model_config())
    model.load_state_dict(load_checkpoint(run_dir / CHECKPOINT_FILE)["model"])
    started = time.perf_counter()
    bleu, hypotheses = score_examples(model, tokenizer, examples, evaluation["max_new_tokens"])
    scores = {"task": task, "split": split, "examples": len(examples), "bleu": bleu,
              "seconds": time.perf_counter() - started, "sample": hypotheses[:3]}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(scores, indent=2))
    os.replace(temporary, path)
    log.info("%s: BLEU %.2f on %d %s examples of %s", run_dir.name, bleu, len(examples), split, task)
    return scores


def _timed(what: str, function, *args) -> None:
    started = time.perf_counter()
    log.info("%s: started", what)
    function(*args)
    log.info("%s: finished in %.0f s", what, time.perf_counter() - started)


# Tables ----------------------------------------------------------------------

def study_table(config: StudyConfig, pretrained: dict, finetuned: dict, scores: dict) -> pd.DataFrame:
    """Return the paper-style table: one row per sparsity and task, from the runs' replayed traces."""
    from spdf_sim.runs import project_run

    machines = config["hw"]
    pre = {s: project_run(path, hw=machines, reference_gpu=None) for s, path in pretrained.items()}
    rows = []
    for (sparsity, task), run_dir in finetuned.items():
        tuned = project_run(run_dir, hw=machines, reference_gpu=None)
        base, dense = pre[sparsity], pre[0.0]
        total = base.pretrain_flops + tuned.finetune_flops
        dense_total = dense.pretrain_flops + tuned.finetune_flops
        row = {"sparsity": sparsity, "task": task, "pretrain_flops": base.pretrain_flops,
               "finetune_flops": tuned.finetune_flops, "total_flops": total,
               "reduction": dense_total / total}
        for machine in machines:
            seconds = base.hardware[machine].pretrain_s + tuned.hardware[machine].finetune_s
            row[f"{machine}_h"] = seconds / SECONDS_PER_HOUR
        row["bleu"] = scores[sparsity, task]["bleu"]
        row["eval_split"] = scores[sparsity, task]["split"]
        rows.append(row)
    return pd.DataFrame(rows)


def paper_table(config: StudyConfig) -> pd.DataFrame:
    """Return the same table projected analytically at paper scale (Chinchilla pre-training budgets)."""
    from spdf_sim.projection import project

    paper = config["paper"]
    rows = []
    for model in paper["models"]:
        for sparsity in config["sparsities"]:
            projection = project(model, float(sparsity), hw=config["hw"],
                                 finetune_tokens=int(paper["finetune_tokens"]),
                                 reference_gpu=None)
            row = {"model": model, "sparsity": sparsity,
                   "pretrain_tokens": projection.tokens,
                   "pretrain_flops": projection.pretrain_flops,
                   "finetune_flops": projection.finetune_flops,
                   "total_flops": projection.pretrain_flops + projection.finetune_flops,
                   "reduction": projection.total_reduction,
                   "pretrain_reduction": projection.pretrain_reduction}
            for machine, result in projection.hardware.items():
                row[f"{machine}_h"] = result.total_s / SECONDS_PER_HOUR
            rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """Format a table as Markdown with 4 significant digits (no extra dependency)."""
    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "|".join(" ---: " for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


# The whole study ---------------------------------------------------------------

def run_study(config: StudyConfig) -> dict[str, Path]:
    """Run every missing piece of the study, then write the tables and the report; return the paths."""
    from spdf_sim.run_report import build_report, write_report

    started = time.perf_counter()
    tokenizer, tokens = prepare_data(config)
    sparsities = [float(s) for s in config["sparsities"]]
    pretrained = {s: pretrain(config, tokens, s) for s in sparsities}
    finetuned, scores = {}, {}
    for sparsity in sparsities:
        for task in config["tasks"]:
            run_dir = finetune(config, tokenizer, pretrained[sparsity], sparsity, task)
            finetuned[sparsity, task] = run_dir
            scores[sparsity, task] = score(config, tokenizer, run_dir, task)

    out = config.out_dir
    table = study_table(config, pretrained, finetuned, scores)
    paper = paper_table(config)
    paths = {"csv": out / "study.csv", "json": out / "study.json", "markdown": out / "study.md",
             "paper_csv": out / "paper-scale.csv"}
    table.to_csv(paths["csv"], index=False)
    paper.to_csv(paths["paper_csv"], index=False)
    paths["json"].write_text(json.dumps({
        "study": json.loads(table.to_json(orient="records", double_precision=15)),
        "paper_scale": json.loads(paper.to_json(orient="records", double_precision=15))},
        indent=2) + "\n")
    paths["markdown"].write_text(
        f"# SPDF study ({config.path})\n\n{markdown(table)}\n\n"
        f"## Projected analytically at paper scale\n\n{markdown(paper)}\n")
    report = build_report([*pretrained.values(), *finetuned.values()], hw=config["hw"])
    paths.update({f"report_{k}": v for k, v in write_report(report, out / "report.html").items()})
    log.info("study finished in %.0f s (this invocation)", time.perf_counter() - started)
    return paths


def add_study_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "study", help="run the SPDF study at small scale and write its table and report",
        description="Pre-train a small GPT dense and sparse, fine-tune each dense on every task, "
                    "score BLEU and write the table (study.md, .csv, .json), the paper-scale "
                    "projection and report.html to out_dir. Running it again continues an "
                    "interrupted study without redoing finished runs.")
    parser.add_argument("config", help="study TOML, such as spdf_sim/configs/study-small.toml")
    parser.add_argument("--out-dir", help="folder for the study's runs and tables "
                                          "(default: the config's out_dir)")
    parser.add_argument("--data-root", help="folder holding e2e/, webnlg/, dart/ and the corpus "
                                            f"(default: the config's data_root, else ${DATA_ROOT_VARIABLE})")
    parser.set_defaults(run=run_study_command)
    return parser


def run_study_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {key: value for key, value in (("out_dir", args.out_dir),
                                               ("data_root", args.data_root)) if value}
    config = load_study_config(args.config, overrides)
    paths = run_study(config)
    print(paths["markdown"].read_text())
    print(f"tables: {paths['csv']}, {paths['json']}; report: {paths['report_html']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``spdf-sim study`` alone, as ``python -m spdf_sim.study``."""
    import sys

    from spdf_sim.cli import main as cli_main  # the CLI imports this module

    return cli_main(["study", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
