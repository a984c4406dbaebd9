"""Exports a local sentence-transformers model's transformer to an ONNX file, from its own
weights (never a hub). Needs torch: run as `python -m adapters.embeddings.onnx_export MODEL
TARGET [INT8_TARGET]` in a process of its own, so that the process serving the ONNX model never
imports torch. With INT8_TARGET, the export is also quantized (dynamic int8 weights) there.

The file appears whole or not at all: it is written next to TARGET under a temporary name
and renamed, so a process starting meanwhile never reads half of it, and two processes
exporting at once each rename a whole file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

OPSET = 17  # what torch's TorchScript exporter and onnxruntime agree on for BERT (LayerNormalization)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export(model_path: Path, target: Path) -> None:
    import torch

    from adapters.embeddings.sentence_transformers import load_model

    transformer: Any = load_model(model_path, "cpu")[0].auto_model
    transformer.eval()

    class Hidden(torch.nn.Module):
        """The transformer called by keyword: BertModel.forward's positional order has other
        arguments between these (the exporter's own kwargs handling trips on `use_cache`)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True
            ).last_hidden_state

    example = torch.ones(2, 8, dtype=torch.long)
    with torch.no_grad(), written_whole(target) as temporary:
        torch.onnx.export(
            Hidden(transformer),
            (example, example, torch.zeros_like(example)),
            str(temporary),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")},
            opset_version=OPSET,
            dynamo=False,
        )


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8: weights stored as int8 with a scale per output channel (one per tensor
    loses more: cosine 0.950 to fp32's on LoCoMo turns, against 0.991), activations quantized
    on the fly. Faster, and other vectors: a model of its own, never mixed with fp32's."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with written_whole(target) as temporary:
        quantize_dynamic(source, temporary, weight_type=QuantType.QInt8, per_channel=True)


@contextmanager
def written_whole(target: Path) -> Iterator[Path]:
    """A temporary path beside `target`, renamed to it once written, removed if not."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".onnx")
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600: readable by other users, as any cache
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def main(model_path: Path, target: Path, int8_target: Path | None = None) -> None:
    if not target.is_file():
        export(model_path, target)
    if int8_target is not None and not int8_target.is_file():
        quantize(target, int8_target)


if __name__ == "__main__":
    main(*(Path(argument) for argument in sys.argv[1:4]))
