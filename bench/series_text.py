"""Series and text explanations: onnxplain against DIANNA's explain_timeseries (RISE, LIME) and
explain_text (RISE, LIME), on the same ONNX models and inputs, in one run.

    python bench/series_text.py [--peers /work/venv-dianna/bin/python] [--inputs 12] [--evaluations 1000]
                                [--json bench/series_text_summary.json]

Models (analytic, built here with the onnx helper):
- series: (N, T=256, C=3) NTC; fires when channel 1's 16-step moving average exceeds 0.5 (a bump of
  height 2 planted at a random 16-step segment of channel 1 of noisy series); a side branch of two
  64-filter convolutions (weight 1e-6 in the score) gives it real compute (>= 1 ms per batch of 64).
- text: token ids + attention mask; fires on the word "great" (a WordLevel whitespace tokenizer over
  40 words, built here); inputs are 16-word sentences with "great" at a random place.
Each tool explains every input's predicted class at about E model evaluations: onnxplain RISE
n_masks = E, PMI samples = E / G (G features; text: tokens drawn from 200 background sentences
without the key word), occlusion G + 1; DIANNA RISE n_masks = E (p_keep
0.5; text: given, so that it does not tune p_keep with 9 E more), LIME num_samples = E (series: one
feature per value, as DIANNA's time-series LIME fits). DIANNA
gets the same tokenizer wrapped in an object with tokenize / convert_tokens_to_string /
mask_token. Every map is scored by one deletion curve, `onnxplain.sequential.curves(...,
"deletion")` over the same features (series: 16-step segments per channel, removed ones at the
channel mean; text: tokens, removed ones [MASK]); lower AUC = more faithful. Reported per model and
tool: mean deletion AUC with its 95 % interval, the paired 95 % interval of ours minus DIANNA RISE,
evaluations, wall seconds and overhead beyond inference ((wall - inference) / wall).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import onnxplain as ox
from onnxplain import sequential
from onnxplain.fidelity import interval, paired_difference

BENCH = Path(__file__).resolve().parent
LENGTH, CHANNELS, WINDOW, WORDS = 256, 3, 16, 16
VOCAB = ["[PAD]", "[UNK]", "[MASK]", "great"] + [f"w{i}" for i in range(36)]


def _classifier(nodes: list, inputs: list, initializers: list) -> bytes:
    nodes = nodes + [helper.make_node("Mul", ["score", "zero"], ["nil"]),
                     helper.make_node("Concat", ["nil", "score"], ["logits"], axis=1),
                     helper.make_node("Softmax", ["logits"], ["p"], axis=1)]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 2])],
                              initializers + [numpy_helper.from_array(np.zeros(1, np.float32), "zero")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def series_model() -> bytes:
    rng = np.random.default_rng(0)
    average = np.zeros((1, CHANNELS, WINDOW), np.float32)
    average[0, 1] = 1 / WINDOW
    c1, c2 = (rng.normal(0, 0.1, size=s).astype(np.float32) for s in ((64, CHANNELS, 9), (64, 64, 9)))
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("Conv", ["xt", "avg_w"], ["avg"]),
             helper.make_node("ReduceMax", ["avg"], ["peak"], axes=[2], keepdims=0),
             helper.make_node("Sub", ["peak", "half"], ["centered"]),
             helper.make_node("Mul", ["centered", "gain"], ["bump"]),
             helper.make_node("Conv", ["xt", "c1"], ["h1"], pads=[4, 4]), helper.make_node("Relu", ["h1"], ["r1"]),
             helper.make_node("Conv", ["r1", "c2"], ["h2"], pads=[4, 4]),
             helper.make_node("ReduceMean", ["h2"], ["side"], axes=[1, 2], keepdims=0),
             helper.make_node("Unsqueeze", ["side", "one"], ["side1"]),
             helper.make_node("Mul", ["side1", "tiny"], ["small"]), helper.make_node("Add", ["bump", "small"], ["score"])]
    inits = [numpy_helper.from_array(average, "avg_w"), numpy_helper.from_array(c1, "c1"),
             numpy_helper.from_array(c2, "c2"), numpy_helper.from_array(np.float32([0.5]), "half"),
             numpy_helper.from_array(np.float32([8.0]), "gain"), numpy_helper.from_array(np.int64([1]), "one"),
             numpy_helper.from_array(np.float32([1e-6]), "tiny")]
    return _classifier(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, CHANNELS])], inits)


def text_model() -> bytes:
    nodes = [helper.make_node("Equal", ["input_ids", "key"], ["is"]),
             helper.make_node("Cast", ["is"], ["hit"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["attention_mask"], ["attended"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["hit", "attended"], ["count"]),
             helper.make_node("ReduceSum", ["count", "axis"], ["total"], keepdims=1),
             helper.make_node("Mul", ["total", "six"], ["scaled"]), helper.make_node("Sub", ["scaled", "three"], ["score"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [None, None]) for n in ("input_ids", "attention_mask")]
    return _classifier(nodes, inputs, [numpy_helper.from_array(np.int64([VOCAB.index("great")]), "key"),
                                       numpy_helper.from_array(np.int64([1]), "axis"),
                                       numpy_helper.from_array(np.float32([6]), "six"),
                                       numpy_helper.from_array(np.float32([3]), "three")])


def tokenizer_file(path: Path) -> Path:
    import tokenizers

    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(path))
    return path


def series_inputs(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.1, size=(n, LENGTH, CHANNELS))
    for i, start in enumerate(rng.integers(0, LENGTH // WINDOW, size=n) * WINDOW):
        x[i, start:start + WINDOW, 1] += 2.0
    return x


def text_inputs(n: int) -> list[str]:
    rng = np.random.default_rng(2)
    texts = []
    for _ in range(n):
        words = [VOCAB[i] for i in rng.integers(4, len(VOCAB), size=WORDS)]
        words[rng.integers(WORDS)] = "great"
        texts.append(" ".join(words))
    return texts


def corpus(n: int = 200) -> list[str]:
    """Background sentences for text PMI: random words, never the key word."""
    rng = np.random.default_rng(3)
    return [" ".join(VOCAB[i] for i in rng.integers(4, len(VOCAB), size=WORDS)) for _ in range(n)]


def ours(model, inputs, features: dict, evaluations: int, background) -> dict[str, dict]:
    sequential.occlusion(model, inputs[0], 1, **features)  # warm-up, untimed (DIANNA's side warms up too)
    out = {}
    for method in ("occlusion", "rise", "pmi"):
        maps, wall, inference, evaluated = [], [], [], []
        for x in inputs:
            masker_count = sequential.make_masker(model, x, **features).count
            before = model.inference_seconds
            start = time.perf_counter()
            options = {"rise": {"n_masks": evaluations}, "occlusion": {},
                       "pmi": {"samples": max(1, evaluations // masker_count), "background": background}}[method]
            result = sequential.explain(model, x, method, 1, **features, **options)
            wall.append(time.perf_counter() - start)
            inference.append(model.inference_seconds - before)
            maps.append(result[1].astype(np.float64))
            evaluated.append(result.evaluations)
        out[f"onnxplain-{method}"] = {"maps": maps, "seconds": np.array(wall), "inference": np.array(inference),
                                      "evaluations": np.array(evaluated)}
    return out


def peers(python: str, work: Path, evaluations: int) -> dict[str, dict]:
    subprocess.run([python, str(BENCH / "series_text_peers.py"), str(work), str(evaluations)], check=True)
    data = np.load(work / "peers.npz")
    out: dict[str, dict] = {}
    for key in data.files:
        tool, field = key.rsplit("/", 1)
        out.setdefault(tool, {})[field] = data[key]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="/work/venv-dianna/bin/python", help="python of DIANNA's venv")
    parser.add_argument("--inputs", type=int, default=12)
    parser.add_argument("--evaluations", type=int, default=1000)
    parser.add_argument("--json", default=str(BENCH / "series_text_summary.json"))
    args = parser.parse_args()
    summary = {"command": " ".join(["python", "bench/series_text.py", *sys.argv[1:]]), "inputs": args.inputs,
               "evaluations_per_input": args.evaluations, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "series.onnx").write_bytes(series_model())
        (work / "text.onnx").write_bytes(text_model())
        tokenizer = tokenizer_file(work / "tokenizer.json")
        series, texts = series_inputs(args.inputs), text_inputs(args.inputs)
        np.save(work / "series.npy", series)
        (work / "texts.json").write_text(json.dumps(texts))
        peer_results = peers(args.peers, work, args.evaluations)
        cases = {"series": (work / "series.onnx", list(series), {"window": WINDOW}, None),
                 "text": (work / "text.onnx", texts, {"tokenizer": tokenizer, "mask_token": "[MASK]"}, corpus())}
        for name, (path, inputs, features, background) in cases.items():
            model = ox.Model(path, progress=False)
            batch = np.repeat(sequential.make_masker(model, inputs[0], **features).row[None], 64, axis=0)
            start = time.perf_counter()
            for _ in range(5):
                model.run(batch)
            per_batch_ms = (time.perf_counter() - start) / 5 * 1e3
            tools = {**ours(model, inputs, features, args.evaluations, background),
                     **{t: r for t, r in peer_results.items() if t.startswith(name + ":")}}
            aucs = {tool: np.array([sequential.curves(model, x, m, "deletion", target=1, **features).aucs["deletion"]
                                    for x, m in zip(inputs, r["maps"])]) for tool, r in tools.items()}
            reference = f"{name}:dianna-rise"
            report = {"model_ms_per_batch_of_64": round(per_batch_ms, 3), "tools": {}}
            for tool, r in tools.items():
                mean, half = interval(aucs[tool])
                entry = {"deletion_auc": round(mean, 4), "ci95": round(half, 4),
                         "evaluations": float(np.mean(r["evaluations"])), "wall_s": round(float(np.mean(r["seconds"])), 4),
                         "overhead": round(float(np.mean((r["seconds"] - r["inference"]) / r["seconds"])), 4)}
                if tool.startswith("onnxplain"):
                    diff, diff_half = paired_difference(aucs[tool], aucs[reference])
                    entry["minus_dianna_rise"] = {"mean": round(diff, 4), "ci95": round(diff_half, 4)}
                report["tools"][tool.split(":")[-1]] = entry
            summary["models"][name] = report
            print(json.dumps({name: report}, indent=1))
    Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
