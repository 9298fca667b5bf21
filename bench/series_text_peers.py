"""DIANNA's side of bench/series_text.py, run in its own venv (dianna 1.8.1):

    /work/venv-dianna/bin/python bench/series_text_peers.py WORK_DIR EVALUATIONS

WORK_DIR holds series.onnx, series.npy (N, T, C), text.onnx, texts.json and tokenizer.json. The
model runs in one reused onnxruntime session per model behind a counting predict function; text
sentences are tokenized by the same tokenizer.json (wrapped with tokenize / convert_tokens_to_string /
mask_token) and fed as ids with an all-ones attention mask. Writes WORK_DIR/peers.npz: per tool
"<modality>:<tool>/maps|seconds|inference|evaluations" (maps for class 1, in the input's shape).
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tabular_peers import timed  # this script's folder is on sys.path when run as a script

MASK = "[MASK]"


class WrappedTokenizer:
    """The bench's tokenizer.json (WordLevel over whitespace-split words; read from its JSON, since
    this venv lacks the `tokenizers` package) in the shape DIANNA's text explainers call."""

    mask_token = MASK

    def __init__(self, path: Path) -> None:
        spec = json.loads(path.read_text())
        assert spec["model"]["type"] == "WordLevel" and spec["pre_tokenizer"]["type"] == "WhitespaceSplit"
        self.vocab, self.unknown = spec["model"]["vocab"], spec["model"]["unk_token"]

    def tokenize(self, text: str) -> list[str]:
        return [w if w in self.vocab else self.unknown for w in text.split()]

    def convert_tokens_to_string(self, tokens) -> str:
        return " ".join(tokens)

    def ids(self, text: str) -> list[int]:
        return [self.vocab[t] for t in self.tokenize(text)]


def counting(run):
    counter = {"evaluations": 0, "seconds": 0.0}

    def predict(x):
        start = time.perf_counter()
        p = run(x)
        counter["seconds"] += time.perf_counter() - start
        counter["evaluations"] += len(p)
        return p

    return predict, counter


def main(work: Path, evaluations: int) -> None:
    import dianna

    series = np.load(work / "series.npy")
    texts = json.loads((work / "texts.json").read_text())
    tokenizer = WrappedTokenizer(work / "tokenizer.json")
    series_session = ort.InferenceSession(str(work / "series.onnx"), providers=["CPUExecutionProvider"])
    text_session = ort.InferenceSession(str(work / "text.onnx"), providers=["CPUExecutionProvider"])

    def run_series(x):
        return series_session.run(None, {"x": np.asarray(x, np.float32)})[0]

    def run_text(sentences):
        ids = np.array([tokenizer.ids(s) for s in sentences], np.int64)
        return text_session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]

    series_predict, series_counter = counting(run_series)
    text_predict, text_counter = counting(run_text)
    tools = {
        "series:dianna-rise": (series, series_counter, lambda x: dianna.explain_timeseries(
            series_predict, x, method="RISE", labels=[1], n_masks=evaluations, p_keep=0.5, batch_size=64,
            mask_type="mean")[0]),
        "series:dianna-lime": (series, series_counter, lambda x: dianna.explain_timeseries(
            series_predict, x, method="LIME", labels=[1], num_samples=evaluations, num_features=x.size,
            batch_size=64, mask_type="mean")[0]),
        "text:dianna-rise": (texts, text_counter, lambda s: np.array([v for _, _, v in dianna.explain_text(
            text_predict, s, tokenizer, method="RISE", labels=[1], n_masks=evaluations, p_keep=0.5,
            batch_size=64)[0]])),
        "text:dianna-lime": (texts, text_counter, lambda s: _lime_text(dianna, text_predict, s, tokenizer, evaluations)),
    }
    result = {}
    for _, (inputs, _, explain) in tools.items():  # warm-up, untimed
        explain(inputs[0])
    for tool, (inputs, counter, explain) in tools.items():
        result.update(timed(tool, explain, inputs, counter, "evaluations"))
    np.savez(work / "peers.npz", **result)


def _lime_text(dianna, predict, sentence: str, tokenizer, evaluations: int) -> np.ndarray:
    """DIANNA LIME's (word, index, weight) list as a weight per token (0 where LIME gives none)."""
    tokens = tokenizer.tokenize(sentence)
    weights = np.zeros(len(tokens))
    for _, index, weight in dianna.explain_text(predict, sentence, tokenizer, method="LIME", labels=[1],
                                                num_samples=evaluations, num_features=len(tokens))[0]:
        weights[index] = weight
    return weights


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
