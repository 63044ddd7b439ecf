"""Harness output in each harness's on-disk layout, for the adapter tests: hand-made lm-eval trees, and
evalscope work dirs written with evalscope's own ReviewResult/SampleScore/TaskConfig classes, and lighteval
output dirs written from its source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def generation_samples(
    task: str, scores: dict[str, list[float]], metric: str = "exact_match", targets: list[str] | None = None
) -> list[dict]:
    """lm-eval samples lines of a generate_until task: one line per (document, filter); ``targets`` are the
    documents' doc_to_target (else the doc_id)."""
    lines = []
    for filter_name, values in scores.items():
        for doc_id, value in enumerate(values):
            answer = f"answer {doc_id}"
            lines.append(
                {
                    "doc_id": doc_id,
                    "doc": {"question": f"{task} q{doc_id}"},
                    "target": targets[doc_id] if targets else str(doc_id),
                    "arguments": {"gen_args_0": {"arg_0": f"{task} q{doc_id}", "arg_1": {"until": ["\n\n"]}}},
                    "resps": [[answer]],
                    "filtered_resps": [f"{filter_name}:{doc_id}"],
                    "filter": filter_name,
                    "metrics": [metric],
                    "doc_hash": _sha(f"{task}{doc_id}"),
                    "prompt_hash": _sha(f"{task} q{doc_id}"),
                    "target_hash": _sha(str(doc_id)),
                    metric: value,
                }
            )
    return lines


def choice_samples(task: str, log_likelihoods: list[list[float]], target: list[int]) -> list[dict]:
    """lm-eval samples lines of a multiple_choice task; log-likelihoods stored as strings, as lm-eval does."""
    choices = ["A", "B", "CCCCCCCC", "D"]
    lines = []
    for doc_id, (lls, gold) in enumerate(zip(log_likelihoods, target)):
        best = max(range(4), key=lambda i: lls[i])
        best_norm = max(range(4), key=lambda i: lls[i] / len(" " + choices[i]))
        lines.append(
            {
                "doc_id": doc_id,
                "doc": {"question": f"{task} q{doc_id}"},
                "target": str(gold),
                "arguments": {f"gen_args_{i}": {"arg_0": f"{task} q{doc_id}", "arg_1": " " + c} for i, c in enumerate(choices)},
                "resps": [[[str(ll), "False"]] for ll in lls],
                "filtered_resps": [[str(ll), "False"] for ll in lls],
                "filter": "none",
                "metrics": ["acc", "acc_norm"],
                "doc_hash": _sha(f"{task}{doc_id}"),
                "prompt_hash": _sha(f"{task} q{doc_id}"),
                "target_hash": _sha(str(gold)),
                "acc": float(best == gold),
                "acc_norm": float(best_norm == gold),
            }
        )
    return lines


def _results_entry(lines: list[dict]) -> dict:
    entry = {"alias": "x"}
    for line in lines:
        for metric in line["metrics"]:
            entry[f"{metric},{line['filter']}"] = 0.5
            entry[f"{metric}_stderr,{line['filter']}"] = 0.1
    return entry


def write_lm_eval_run(
    out: Path, date: str, seed: int | None, tasks: dict[str, list[dict]], model: str = "org/model"
) -> Path:
    """One lm-eval invocation in its on-disk layout: <out>/<model_sanitized>/results_<date>.json + samples."""
    folder = out / model.replace("/", "__")
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {"random_seed": seed, "numpy_seed": seed, "torch_seed": seed, "fewshot_seed": seed}
    results = {
        "results": {task: _results_entry(lines) for task, lines in tasks.items()},
        "configs": {task: {"task": task, "output_type": "generate_until"} for task in tasks},
        "config": {"model": "hf", "model_args": {"pretrained": model}, "gen_kwargs": {}, **seeds},
        "model_name": model,
        "model_name_sanitized": model.replace("/", "__"),
    }
    path = folder / f"results_{date}.json"
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    for task, lines in tasks.items():
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (folder / f"samples_{task}_{date}.jsonl").write_text(text, encoding="utf-8")
    return path


DATES = ["2026-01-01T10-00-00.000001", "2026-01-01T11-00-00.000002", "2026-01-01T12-00-00.000003"]
MC_LLS = [[-1.0, -2.0, -3.0, -4.0], [-5.0, -1.5, -9.0, -2.0], [-3.0, -3.5, -2.5, -8.0], [-1.0, -0.5, -7.5, -9.0]]


def standard_tasks(flip: int = -1) -> dict[str, list[dict]]:
    """gsm8k with both filters, a ceval MC subject, a generative mmlu_redux subject and an unknown task."""
    strict = [0.0, 0.0, 1.0, 0.0]
    flexible = [1.0, 0.0, 1.0, 1.0]
    if flip >= 0:
        flexible[flip] = 1.0 - flexible[flip]
    return {
        "gsm8k": generation_samples("gsm8k", {"strict-match": strict, "flexible-extract": flexible}),
        "ceval-valid_law": choice_samples("ceval-valid_law", MC_LLS, [0, 1, 1, 0]),
        "mmlu_redux_anatomy_generative": generation_samples("mmlu_redux_anatomy_generative", {"default": [1, 0, 1, 1]}),
        "arc_easy": generation_samples("arc_easy", {"none": [1.0, 0.0, 1.0, 0.5]}, metric="acc"),
    }


# --------------------------------------------------------------------------- evalscope work dirs


def evalscope_review(
    index: int, group: int, generation: int, value: dict, main: str | None = "acc", status: str = "success", target: str | None = None
) -> dict:
    """A review line of one of evalscope's own benchmarks; ``target`` is the accepted answer (else the group)."""
    from evalscope.api.evaluator.cache import ReviewResult
    from evalscope.api.messages import ChatMessageAssistant, ChatMessageUser
    from evalscope.api.metric.scorer import SampleScore, Score

    review = ReviewResult(
        index=index,
        target=[str(group) if target is None else target],
        messages=[ChatMessageUser(content=f"question {group}"), ChatMessageAssistant(content=f"so {group}")],
        sample_score=SampleScore(
            score=Score(value=value, main_score_name=main, status=status, prediction=f"so {group}", extracted_prediction=str(group)),
            sample_id=index,
            group_id=group,
            generation_index=generation,
        ),
    )
    return review.model_dump(mode="json")


def general_qa_review(index: int, group: int, generation: int, *, question: str, answer: str, prediction: str, rouge: float = 0.0) -> dict:
    """A review line as evalscope's general_qa writes it (GeneralQAAdapter.match_score): the dataset's answer as
    target, the raw completion as both prediction and extracted_prediction, BLEU/Rouge values, Rouge-L-R main."""
    from evalscope.api.evaluator.cache import ReviewResult
    from evalscope.api.messages import ChatMessageAssistant, ChatMessageUser
    from evalscope.api.metric.scorer import SampleScore, Score

    review = ReviewResult(
        index=index,
        target=[answer],
        messages=[ChatMessageUser(content=question), ChatMessageAssistant(content=prediction)],
        sample_score=SampleScore(
            score=Score(
                value={"bleu-1": rouge, "Rouge-L-R": rouge}, main_score_name="Rouge-L-R", prediction=prediction,
                extracted_prediction=prediction,
            ),
            sample_id=index,
            group_id=group,
            generation_index=generation,
        ),
    )
    return review.model_dump(mode="json")


def write_evalscope_run(
    root: Path, stamp: str, reviews: dict[str, list[dict]], *, seed: int = 42, repeats: int = 1, dataset_args: dict | None = None,
    **task_config,
) -> Path:
    """An evalscope work dir: configs/task_config.yaml (dumped by TaskConfig) and reviews/<model>/<name>.jsonl.
    ``task_config`` adds TaskConfig fields, e.g. ``eval_type="openai_api", api_url=...`` for a run against a server."""
    from evalscope.config import TaskConfig

    work_dir = root / stamp
    known = ("general_qa", "general_mcq", "mmlu_redux", "gsm8k", "ceval")
    datasets = sorted({next(k for k in known if name.startswith(k + "_")) for name in reviews})
    config = TaskConfig(
        model="smol", model_id="smol", datasets=datasets, dataset_args=dataset_args or {}, repeats=repeats, seed=seed, **task_config
    )
    config.dump_yaml(str(work_dir / "configs"))
    review_dir = work_dir / "reviews" / "smol"
    review_dir.mkdir(parents=True)
    for name, lines in reviews.items():
        (review_dir / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return work_dir


def repeated_reviews(n_docs: int, repeats: int, score, main: str = "acc", extra: dict | None = None) -> list[dict]:
    """Rows as evalscope writes them with ``repeats``: index = doc*repeats+g, group_id = doc, generation_index = g."""
    rows = []
    for doc in range(n_docs):
        for generation in range(repeats):
            value = {main: score(doc, generation), **(extra or {})}
            rows.append(evalscope_review(doc * repeats + generation, doc, generation, value, main))
    return rows


def lighteval_detail(doc_id: int, score: float, *, task: str = "gsm8k|0", metric: str = "extractive_match") -> dict:
    """One row of a lighteval details parquet: asdict(Detail(doc, model_response, metric)) of lighteval 0.13."""
    query = f"{task} q{doc_id}"
    return {
        "doc": {"query": query, "choices": [str(doc_id)], "gold_index": 0, "instruction": "", "id": str(doc_id),
                "task_name": task, "fewshot_samples": [], "generation_size": 256, "stop_sequences": ["\n\n"]},
        "model_response": {"input": query, "text": [f"answer {doc_id}"], "text_post_processed": [str(doc_id)],
                           "logprobs": [], "argmax_logits_eq_gold": [], "input_tokens": [], "output_tokens": [],
                           "truncated_tokens_count": 0, "padded_tokens_count": 0},
        "metric": {metric: score},
    }


def write_lighteval_run(out: Path, date: str, tasks: dict[str, list[dict]], *, model: str = "org/model",
                        temperature: float = 0.0, seed: int | None = 1234) -> Path:
    """One lighteval run in its on-disk layout (EvaluationTracker.save of lighteval 0.13, written here from its
    source because lighteval's pins clash with this environment): results/<model>/results_<date>.json and
    details/<model>/<date>/details_<task>_<date>.parquet, written with `datasets` as lighteval writes them."""
    from datasets import Dataset

    generation = {"temperature": temperature, "top_p": None, "max_new_tokens": 256, "seed": seed, "stop_tokens": None}
    results = {
        "config_general": {"lighteval_sha": "0.13.0", "model_name": model,
                           "model_config": {"model_name": model, "generation_parameters": generation, "system_prompt": None}},
        "results": {task: {"extractive_match": 0.5} for task in tasks},
        "versions": {}, "config_tasks": {task: {"name": task.split("|")[-2]} for task in tasks},
        "summary_tasks": {}, "summary_general": {},
    }
    results_dir = out / "results" / model
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"results_{date}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    details_dir = out / "details" / model / date
    details_dir.mkdir(parents=True, exist_ok=True)
    for task, rows in tasks.items():
        dataset = Dataset.from_list(rows)
        dataset.select_columns(sorted(dataset.column_names)).to_parquet(str(details_dir / f"details_{task}_{date}.parquet"))
    return out


def opencompass_item(index: int, *, ppl: bool = False) -> dict:
    """One predictions entry as OpenCompass's GenInferencer / PPLInferencer dumps it."""
    if ppl:
        labels = {f"label: {choice}": {"testing input": f"q{index}", "prompt": f"q{index} {choice}", "PPL": 1.0 + i}
                  for i, choice in enumerate("ABCD")}
        return {**labels, "prediction": "A", "gold": "A" if index % 2 == 0 else "B"}
    return {"origin_prompt": [{"role": "HUMAN", "prompt": f"question {index}"}], "prediction": f" answer {index}\n", "gold": str(index)}


def write_opencompass_run(root: Path, stamp: str, datasets: dict[str, list[dict]], *, model: str = "smol-api",
                          correct=None, shards: int = 1) -> Path:
    """An OpenCompass work dir <root>/<stamp>/ (format from opencompass/tasks/openicl_eval.py): predictions, split
    into ``shards`` partition files when > 1, and, with ``correct(dataset, index) -> bool``, results with
    dump_details details."""
    run = root / stamp
    for dataset, items in datasets.items():
        predictions = run / "predictions" / model
        predictions.mkdir(parents=True, exist_ok=True)
        size = -(-len(items) // shards)
        parts = [items[start:start + size] for start in range(0, len(items), size)]
        for number, part in enumerate(parts):
            name = f"{dataset}_{number}.json" if shards > 1 else f"{dataset}.json"
            (predictions / name).write_text(json.dumps({str(i): item for i, item in enumerate(part)}, indent=4), encoding="utf-8")
        if correct is not None:
            details = {str(i): {"prompt": item.get("origin_prompt"), "origin_prediction": item["prediction"],
                                "predictions": item["prediction"].strip(), "references": item["gold"], "correct": correct(dataset, i)}
                       for i, item in enumerate(items)}
            accuracy = 100 * sum(d["correct"] for d in details.values()) / len(details)
            (run / "results" / model).mkdir(parents=True, exist_ok=True)
            (run / "results" / model / f"{dataset}.json").write_text(
                json.dumps({"accuracy": accuracy, "details": details, "type": "GEN"}, indent=4), encoding="utf-8")
    return run


# The config OpenCompass dumps beside its outputs, as opencompass/cli/main.py writes it (cfg.dump to
# configs/<timestamp>_<pid>.py): mmengine's Config.pretty_text, formatted by yapf, keys sorted, the class of each
# `type` as its dotted path string, `datasets` a list of the dataset lists the user config put together.
# A HuggingFacewithChatTemplate model; gsm8k generated with FixKRetriever few-shot, ceval-law scored by PPL.
_OPENCOMPASS_DUMP = """\
datasets = [
    [
        dict(
            abbr='gsm8k',
            eval_cfg=dict(
                evaluator=dict(type='opencompass.datasets.Gsm8kEvaluator'),
                pred_postprocessor=dict(
                    type='opencompass.datasets.gsm8k_postprocess')),
            infer_cfg=dict(
                ice_template=dict(
                    template=dict(round=[
                        dict(prompt='Question: {question}', role='HUMAN'),
                        dict(prompt='Answer: {answer}', role='BOT'),
                    ]),
                    type=
                    'opencompass.openicl.icl_prompt_template.PromptTemplate'),
                inferencer=dict(
                    max_out_len=512,
                    type='opencompass.openicl.icl_inferencer.GenInferencer'),
                prompt_template=dict(
                    ice_token='</E>',
                    template=dict(
                        begin='</E>',
                        round=[
                            dict(prompt='Question: {question}', role='HUMAN'),
                        ]),
                    type=
                    'opencompass.openicl.icl_prompt_template.PromptTemplate'),
                retriever=dict(
                    fix_id_list=[
@FIX_IDS@
                    ],
                    type='opencompass.openicl.icl_retriever.FixKRetriever')),
            path='opencompass/gsm8k',
            reader_cfg=dict(
                input_columns=[
                    'question',
                ], output_column='answer'),
            type='opencompass.datasets.GSM8KDataset'),
    ],
    [
        dict(
            abbr='ceval-law',
            eval_cfg=dict(
                evaluator=dict(
                    type='opencompass.openicl.icl_evaluator.AccEvaluator')),
            infer_cfg=dict(
                inferencer=dict(
                    type='opencompass.openicl.icl_inferencer.PPLInferencer'),
                prompt_template=dict(
                    template=dict(
                        A='{question}\\nA. {A}\\nB. {B}\\nAnswer: A',
                        B='{question}\\nA. {A}\\nB. {B}\\nAnswer: B'),
                    type=
                    'opencompass.openicl.icl_prompt_template.PromptTemplate'),
                retriever=dict(
                    type='opencompass.openicl.icl_retriever.ZeroRetriever')),
            name='law',
            path='opencompass/ceval-exam',
            reader_cfg=dict(
                input_columns=[
                    'question',
                    'A',
                    'B',
                ],
                output_column='answer',
                test_split='val',
                train_split='dev'),
            type='opencompass.datasets.CEvalDataset'),
    ],
]
eval = dict(runner=dict(task=dict(dump_details=True)))
models = [
    dict(
        abbr='smol-api',
        batch_size=8,
        generation_kwargs=@GENERATION_KWARGS@,
        max_out_len=1024,
        max_seq_len=4096,
        path='/models/smollm2',
        run_cfg=dict(num_gpus=1),
        stop_words=[
            '<|im_end|>',
        ],
        type='opencompass.models.HuggingFacewithChatTemplate'),
]
work_dir = 'outputs/default/@STAMP@'
"""


def write_opencompass_config(run: Path, *, generation_kwargs: str = "dict(do_sample=False)", fix_ids: int = 5) -> Path:
    """<run>/configs/<timestamp>_<pid>.py as OpenCompass dumps it (see _OPENCOMPASS_DUMP); ``generation_kwargs``
    is the model's, as dumped source text."""
    text = (_OPENCOMPASS_DUMP.replace("@FIX_IDS@", "\n".join(f"                        {i}," for i in range(fix_ids)))
            .replace("@GENERATION_KWARGS@", generation_kwargs).replace("@STAMP@", run.name))
    path = run / "configs" / f"{run.name}_4242.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
