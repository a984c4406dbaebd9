"""A local sentence-transformers model on ONNX Runtime: the same vectors as torch gives
(cosine >= 0.9999, tested), at a fraction of a query's cost, and no torch in the process.

The transformer is exported once, from the model's own weights, into a cache keyed by the
digest of the model's files (onnx_export.py, in a process of its own: the export needs torch).
Then ONNX Runtime runs it, the model's `tokenizer.json` tokenises through `tokenizers`, and
the pooling is done here: mean over the attention mask, then unit length. Models whose
vectors need more (a Dense layer, CLS pooling) are refused with the fix: the torch runtime.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.embeddings.local import LocalEmbedder
from adapters.embeddings.onnx_export import INPUTS, OPSET
from application.ports.embedder import EmbedderUnavailable
from application.ports.observability import Metrics

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

TORCH_RUNTIME = "MEMORY_EMBEDDING_RUNTIME=torch"
DOCUMENT_PROMPTS = ("document", "passage", "corpus")  # the names encode_document looks for, in its order
EXPORT_TIMEOUT_SECONDS = 600


# The int8 export's name: per-channel scales (bench/results/embedders.md). The first int8 of
# issue 22, one scale per tensor (cosine about 0.95 to fp32's), was "int8": its vectors are
# not these, so a store embedded by it is another model's (a reembed), never mixed with these.
INT8 = "int8pc"


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """What the ONNX runtime takes from a sentence-transformers model folder, beside the weights."""

    max_length: int
    lower_case: bool
    query_prompt: str
    document_prompt: str

    @classmethod
    def read(cls, root: Path) -> ModelLayout:
        modules = json.loads((root / "modules.json").read_text("utf-8")) if (root / "modules.json").is_file() else []
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
            raise EmbedderUnavailable(
                f"the model at {root} is made of {kinds or 'no modules.json'}: the ONNX runtime runs "
                f"Transformer, Pooling (mean) and Normalize only; set {TORCH_RUNTIME}"
            )
        pooling = read_json(root / modules[1].get("path", "") / "config.json")
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True}
        if modes != {"pooling_mode_mean_tokens"} or pooling.get("include_prompt", True) is not True:
            raise EmbedderUnavailable(
                f"the model at {root} pools by {sorted(modes)}: the ONNX runtime does mean pooling only; "
                f"set {TORCH_RUNTIME}"
            )
        sbert = read_json(root / "sentence_bert_config.json")
        if not sbert.get("max_seq_length"):  # sentence-transformers' own fallback
            config = read_json(root / "config.json")
            tokenizer_limit = read_json(root / "tokenizer_config.json").get("model_max_length", 512)
            sbert["max_seq_length"] = min(config.get("max_position_embeddings", 512), tokenizer_limit)
        prompts = read_json(root / "config_sentence_transformers.json").get("prompts") or {}
        return cls(
            max_length=int(sbert["max_seq_length"]),
            lower_case=bool(sbert.get("do_lower_case", False)),
            query_prompt=str(prompts.get("query", "")),
            document_prompt=next((str(prompts[n]) for n in DOCUMENT_PROMPTS if n in prompts), ""),
        )


def runnable_on_onnx(root: Path) -> str | None:
    """None when this runtime can run the model folder at `root`; else why not."""
    try:
        ModelLayout.read(root)
    except (EmbedderUnavailable, OSError, ValueError) as error:
        return str(error)
    if not (root / "tokenizer.json").is_file():
        return f"the model at {root} has no tokenizer.json"
    return None


def exported_path(cache_dir: Path, model_name: str, int8: bool = False) -> Path:
    """The export of the model named `label@digest` (model_identity): a model changed in
    place has another digest, so another file; the file's name carries the opset it was made at."""
    digest = model_name.rsplit("@", 1)[-1]
    return cache_dir / f"{digest}-opset{OPSET}{'-' + INT8 if int8 else ''}.onnx"


def int8_name(model_name: str) -> str:
    """The int8 model's recorded name: its vectors are not fp32's (cosine about 0.99), so the
    stored vectors of one are never searched with the other's queries (switching is a reembed)."""
    label, _, digest = model_name.rpartition("@")
    return f"{label}-{INT8}@{digest}"


def ensure_exported(model_path: Path, target: Path, int8_target: Path | None = None) -> Path:
    """The ONNX file to load (`int8_target` when given), exported (and quantized) first if the
    cache has none, in a child process."""
    wanted = int8_target or target
    if wanted.is_file():
        return wanted
    logger.info("exporting the embedding model to ONNX", extra={"model": str(model_path), "target": str(wanted)})
    started = time.monotonic()
    command = [sys.executable, "-m", "adapters.embeddings.onnx_export", str(model_path), str(target)]
    try:
        done = subprocess.run(
            command + ([str(int8_target)] if int8_target else []),
            capture_output=True,
            text=True,
            timeout=EXPORT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EmbedderUnavailable(f"cannot export the model to ONNX: {error}; or set {TORCH_RUNTIME}") from error
    if done.returncode != 0 or not wanted.is_file():
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise EmbedderUnavailable(f"exporting the model to ONNX failed ({tail[0]}); set {TORCH_RUNTIME}")
    logger.info("exported the embedding model to ONNX", extra={"seconds": round(time.monotonic() - started, 1)})
    return wanted


def open_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads  # 0: onnxruntime's default (one per physical core)
    options.inter_op_num_threads = 1
    # No spinning: between runs its threads would busy-wait for the next one, taking the cores
    # from PostgreSQL and the event loop that the rest of a search runs on (8 clients: 66.8 vs
    # 49.3 searches/s with it on, a query's encoding alone 6.6 vs 5.2 ms; bench/search_parts.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_tokenizer(root: Path, max_length: int) -> Tokenizer:
    """The model's tokenizer.json with sentence-transformers' settings: it cuts at the model's
    max_seq_length (the file's own truncation, 128 for all-MiniLM-L6-v2, is not what
    sentence-transformers uses: 256) and pads to the longest text of a batch, not to a fixed length."""
    from tokenizers import Tokenizer

    if not (root / "tokenizer.json").is_file():
        raise EmbedderUnavailable(f"the model at {root} has no tokenizer.json; set {TORCH_RUNTIME}")
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    padding = tokenizer.padding or {}
    pad_token = str(padding.get("pad_token", "[PAD]"))
    pad_id = tokenizer.token_to_id(pad_token)
    tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad_token)
    return tokenizer


class OnnxEmbedder(LocalEmbedder):
    """The exported transformer on ONNX Runtime, pooled and normalised as sentence-transformers does."""

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        tokenizer: Tokenizer,
        layout: ModelLayout,
        model_name: str,
        batch_size: int,
        max_concurrency: int,
        max_pending: int = 256,
        metrics: Metrics | None = None,
    ) -> None:
        dimensions = session.get_outputs()[0].shape[-1]
        if not isinstance(dimensions, int):
            raise EmbedderUnavailable(f"model {model_name} does not report its embedding dimension")
        super().__init__(model_name, dimensions, batch_size, max_concurrency, max_pending)
        self._session = session
        self._tokenizer = tokenizer
        self._layout = layout
        self._metrics = metrics
        self._inputs = {i.name for i in session.get_inputs()}

    def _encode(self, texts: list[str], kind: str) -> list[list[float]]:
        prompt = self._layout.query_prompt if kind == "query" else self._layout.document_prompt
        prepared = [prompt + text.strip() for text in texts]  # sentence-transformers strips too
        if self._layout.lower_case:
            prepared = [text.lower() for text in prepared]
        # Longest first, as sentence-transformers orders them: a batch pads to its longest text,
        # so texts of like length batched together pad (and compute) the least.
        order = sorted(range(len(prepared)), key=lambda i: -len(prepared[i]))
        rows: list[list[float]] = [[] for _ in prepared]
        truncated = 0
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            encodings = self._tokenizer.encode_batch([prepared[i] for i in batch])
            truncated += sum(bool(e.overflowing) for e in encodings)
            for i, vector in zip(batch, self._forward(encodings).tolist(), strict=True):
                rows[i] = vector
        if truncated and self._metrics is not None:
            self._metrics.embedding_truncated(kind, truncated)
        return rows

    def _forward(self, encodings: list[Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self._session.run(None, {name: feed[name] for name in INPUTS if name in self._inputs})[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: np.ndarray[Any, np.dtype[np.float32]] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors


def load_onnx_embedder(
    model_path: Path,
    model_name: str,
    cache_dir: Path,
    threads: int,
    batch_size: int,
    max_concurrency: int,
    max_pending: int = 256,
    metrics: Metrics | None = None,
    int8: bool = False,
) -> OnnxEmbedder:
    """Blocks (an export takes seconds, a session a second): call it off the event loop.
    `model_name`: the fp32 model's (model_identity); int8 records another (int8_name)."""
    if not model_path.is_dir():
        raise EmbedderUnavailable(
            f"no model directory at {model_path}: MEMORY_EMBEDDING_MODEL must be a local sentence-transformers "
            "model folder (leave it unset for the bundled all-MiniLM-L6-v2)"
        )
    layout = ModelLayout.read(model_path)
    tokenizer = load_tokenizer(model_path, layout.max_length)
    fp32 = exported_path(cache_dir, model_name)
    path = ensure_exported(model_path, fp32, exported_path(cache_dir, model_name, int8=True) if int8 else None)
    session = open_session(path, threads)
    name = int8_name(model_name) if int8 else model_name
    return OnnxEmbedder(session, tokenizer, layout, name, batch_size, max_concurrency, max_pending, metrics)
