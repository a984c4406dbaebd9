"""The bundled model on ONNX Runtime makes torch's vectors, serves without torch, and is
exported once per model digest (real model, real export: no fakes)."""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from adapters.embeddings.onnx import ensure_exported, exported_path, load_onnx_embedder, open_session
from adapters.embeddings.sentence_transformers import SentenceTransformerEmbedder, bundled_model_path

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "",
    " ",
    "\n\t",
    ".",
    "?!",
    "a",
    "hi",
    "OK",
    "Hello, world!",
    "The cat sat on the mat.",
    "How old is your brother?",
    "My brother turned thirty-two last week.",
    "The invoice was paid by bank transfer on 2024-03-15.",
    "I prefer window seats on long flights, and an aisle on short ones.",
    "Remind me to call the dentist on Tuesday at 10:30.",
    "user: what did I say about my allergies? assistant: you are allergic to peanuts.",
    "Mixed CASE and Punctuation!!! ... ??? ;;; ---",
    "1234567890 3.14159 -42 1e10 0xFF",
    "https://example.com/path?query=1&other=two#fragment",
    "def f(x):\n    return x * 2  # code, with indentation",
    '{"json": true, "list": [1, 2, 3], "nested": {"key": "value"}}',
    "Ünïcödé wïth ăccents: café, naïve, façade, jalapeño, Zürich",
    "Straße, Größe, Fuß: German sharp s",
    "日本語のテキストです。東京は大きな都市です。",
    "中文文本：我喜欢喝茶。",
    "한국어 문장입니다.",
    "Русский текст: я люблю читать книги.",
    "Ελληνικά: καλημέρα κόσμε",
    "العربية: مرحبا بالعالم",
    "עברית: שלום עולם",
    "हिन्दी: नमस्ते दुनिया",
    "Emoji 🎉🚀🔥 and flags 🇫🇷🇯🇵 and skin tones 👍🏽",
    "zero\u200bwidth\u200bspaces and a soft\u00adhyphen",
    "tabs\tand\nnewlines\r\nand  double  spaces",
    "    leading and trailing whitespace    ",
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "word " * 200,
    "memory " * 300,
    "A long note about a trip. " * 40,
    " ".join(f"token{i}" for i in range(400)),
    "The quick brown fox jumps over the lazy dog. " * 30 + "The end is past the model's window.",
    "🎉" * 300,
    "日本" * 400,
    "[CLS] [SEP] [PAD] [MASK] [UNK] special tokens written as text",
    "<script>alert('x')</script>",
    "SELECT * FROM messages WHERE tenant = 'a'; DROP TABLE users;--",
    "email me at someone@example.org or +1 (555) 010-9999",
    "The meeting moved from Monday to Thursday because the CEO is travelling.",
    "I don't like mushrooms, but I love truffle oil — strange, isn't it?",
    "Q3 revenue rose 12% year over year to $4.2B.",
    "ok ok ok ok ok ok ok ok ok ok",
]


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    x, y = np.asarray(a), np.asarray(b)
    return (x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


@pytest.fixture(scope="module")
def exported(onnx_cache: Path, bundled_identity: str) -> Path:
    embedder = load_onnx_embedder(bundled_model_path(), bundled_identity, onnx_cache, 2, 32, 1)
    embedder.close()
    return exported_path(onnx_cache, bundled_identity)


async def test_onnx_vectors_match_torchs_for_every_kind_of_text(model, bundled_identity, onnx_cache, exported):
    torch = SentenceTransformerEmbedder(model, bundled_identity, batch_size=16, max_concurrency=1)
    onnx = load_onnx_embedder(bundled_model_path(), bundled_identity, onnx_cache, 2, 16, 1)
    try:
        assert onnx.model_name == torch.model_name and onnx.dimensions == torch.dimensions == 384
        documents = cosines(await onnx.embed_documents(TEXTS), await torch.embed_documents(TEXTS))
        queries = cosines([await onnx.embed_query(t) for t in TEXTS], [await torch.embed_query(t) for t in TEXTS])
    finally:
        torch.close()
        onnx.close()
    worst = {TEXTS[i][:40]: round(float(documents[i]), 6) for i in np.argsort(documents)[:3]}
    assert len(TEXTS) >= 50
    assert documents.min() >= 0.9999, worst
    assert queries.min() >= 0.9999


def test_a_process_serving_on_onnx_never_imports_torch(onnx_cache, exported, tmp_path):
    """Through the composition root, as the API and the worker open it, with the export cached."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from config.container import Container, resolved, stop
        from config.settings import Settings

        async def main():
            settings = Settings(
                _env_file=None, embedding_runtime="onnx", embedding_onnx_cache_dir={str(onnx_cache)!r},
                data_dir={str(tmp_path)!r},
            )
            container = Container(settings=settings)
            try:
                embedder = await resolved(container.embedder())
                assert len(await embedder.embed_query("is torch here?")) == 384
                assert len(await embedder.embed_documents(["one", "two"])) == 2
            finally:
                await stop(container)
            print(sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert not (tmp_path / "onnx").exists()  # the cache dir setting was used, not the data dir


def test_the_export_is_reused_and_another_digest_gets_another_file(onnx_cache, bundled_identity, exported):
    before = exported.stat().st_mtime_ns
    load_onnx_embedder(bundled_model_path(), bundled_identity, onnx_cache, 1, 8, 1).close()
    assert exported.stat().st_mtime_ns == before  # not exported again

    other = "all-MiniLM-L6-v2@000000000000"  # as if the weights had changed in place
    assert exported_path(onnx_cache, other) != exported
    load_onnx_embedder(bundled_model_path(), other, onnx_cache, 1, 8, 1).close()
    assert exported_path(onnx_cache, other).is_file()
    assert exported.stat().st_mtime_ns == before
    assert [p.name for p in onnx_cache.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    assert oct(os.stat(exported).st_mode & 0o777) == "0o644"


async def test_int8_is_another_model_quantized_from_the_cached_export(onnx_cache, bundled_identity, exported):
    """Other vectors, so another recorded name: an int8 process refuses fp32's stored vectors."""
    before = exported.stat().st_mtime_ns
    fp32 = load_onnx_embedder(bundled_model_path(), bundled_identity, onnx_cache, 2, 16, 1)
    int8 = load_onnx_embedder(bundled_model_path(), bundled_identity, onnx_cache, 2, 16, 1, int8=True)
    try:
        label, digest = bundled_identity.split("@")
        assert int8.model_name == f"{label}-int8pc@{digest}" != fp32.model_name
        assert exported_path(onnx_cache, bundled_identity, int8=True).is_file()
        assert exported.stat().st_mtime_ns == before  # quantized from the cached export, not exported again
        texts = TEXTS[8:20]
        similarity = cosines(await int8.embed_documents(texts), await fp32.embed_documents(texts))
        assert 0.98 < similarity.mean() < 0.9999  # close (per-channel scales: per-tensor gives 0.95), not the same
        query = await int8.embed_query("How old is your brother?")
        related, unrelated = await int8.embed_documents(
            ["My brother turned thirty-two last week.", "The invoice was paid by bank transfer."]
        )
        assert cosines([query], [related])[0] > cosines([query], [unrelated])[0] + 0.2
    finally:
        fp32.close()
        int8.close()


def test_two_processes_exporting_at_once_each_leave_a_whole_file(tmp_path, bundled_identity):
    """As two processes starting at once on an empty cache: each exports and renames its own
    temporary file; the survivor is whole, and nothing half-written is left behind."""
    target = exported_path(tmp_path, bundled_identity)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: ensure_exported(bundled_model_path(), target), range(2)))
    assert paths == [target, target]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert open_session(target, 1).get_outputs()[0].shape[-1] == 384


def test_the_sessions_threads_do_not_spin_between_runs(exported):
    """Spinning threads would take the cores from PostgreSQL and the event loop between encodes."""
    options = open_session(exported, 2).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2
