"""Embedding settings that cannot work together are refused at start, naming the fix."""

import pytest
from pydantic import ValidationError

import adapters.embeddings.sentence_transformers as sentence_transformers
from application.ports.embedder import EmbedderUnavailable
from config.resources import open_sentence_transformer
from config.settings import Settings
from tests.fakes.metrics import InMemoryMetrics


@pytest.mark.parametrize("key", [None, "", "  "])
def test_gemini_without_a_key_is_refused_naming_the_variable(key):
    with pytest.raises(ValidationError, match="google_gemini needs MEMORY_GEMINI_API_KEY"):
        Settings(_env_file=None, embedding_provider="google_gemini", gemini_api_key=key)


def test_gemini_with_a_key_starts_at_768_dimensions_and_never_shows_the_key():
    settings = Settings(_env_file=None, embedding_provider="google_gemini", gemini_api_key="secret-gemini-key")

    assert settings.embedding_dimensions is None  # the adapter's default: 768
    assert settings.gemini_model == "gemini-embedding-001"
    assert "secret-gemini-key" not in repr(settings)


def test_more_dimensions_than_pgvector_indexes_are_refused():
    with pytest.raises(ValidationError, match="MEMORY_EMBEDDING_DIMENSIONS must be at most 2000"):
        Settings(_env_file=None, embedding_provider="google_gemini", gemini_api_key="k", embedding_dimensions=3072)
    assert Settings(_env_file=None, embedding_dimensions=2000).embedding_dimensions == 2000
    assert Settings(_env_file=None, embedding_dimensions="").embedding_dimensions is None  # blank in .env: unset


class FakeModel:
    """What SentenceTransformerEmbedder asks of a model at construction."""

    def get_embedding_dimension(self) -> int:
        return 384


async def test_a_dimension_the_local_model_does_not_make_is_refused_at_start(monkeypatch, tmp_path):
    monkeypatch.setattr(sentence_transformers, "load_model", lambda path, device: FakeModel())
    settings = Settings(_env_file=None, embedding_model=str(tmp_path), embedding_dimensions=768)

    resource = open_sentence_transformer(settings, InMemoryMetrics())
    with pytest.raises(EmbedderUnavailable, match=r"MEMORY_EMBEDDING_DIMENSIONS=768, but .* 384 dimensions"):
        await anext(resource)

    same = open_sentence_transformer(settings.model_copy(update={"embedding_dimensions": 384}), InMemoryMetrics())
    assert (await anext(same)).dimensions == 384
    await same.aclose()


async def test_the_onnx_runtime_is_chosen_by_setting_and_keeps_the_models_name(monkeypatch, tmp_path):
    """MEMORY_EMBEDDING_RUNTIME=onnx opens the ONNX embedder over the same folder, under the
    same recorded name as torch would (the vectors are the same), with its cache and threads."""
    import adapters.embeddings.onnx as onnx
    from config.container import Container, resolved, stop
    from tests.fakes.embedder import DeterministicEmbedder

    class Closable(DeterministicEmbedder):
        def close(self) -> None:
            calls.append("closed")

    calls: list[object] = []

    def load(path, model_name, cache_dir, threads, **rest):  # type: ignore[no-untyped-def]
        calls.append((path, model_name, cache_dir, threads))
        return Closable()

    monkeypatch.setattr(onnx, "load_onnx_embedder", load)
    model = tmp_path / "my-model"
    model.mkdir()
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent))
    cache = cache.parent / "memorymesh" / "onnx"
    settings = Settings(_env_file=None, embedding_model=str(model), embedding_runtime="onnx", data_dir=tmp_path)
    container = Container(settings=settings)
    try:
        assert isinstance(await resolved(container.embedder()), DeterministicEmbedder)
    finally:
        await stop(container)
    assert calls == [(model, sentence_transformers.model_identity(model, "my-model"), cache, 2), "closed"]


def test_auto_runs_a_mean_pooled_model_on_onnx_and_any_other_on_torch(tmp_path, caplog):
    """The default: ONNX Runtime where it makes the same vectors, torch (said in the log) where it cannot."""
    import json
    import shutil

    from config.resources import local_runtime

    assert Settings(_env_file=None).embedding_runtime == "auto"
    assert local_runtime(Settings(_env_file=None)) == "onnx"  # the bundled all-MiniLM-L6-v2
    cls_pooled = tmp_path / "cls-pooled"
    shutil.copytree(sentence_transformers.bundled_model_path(), cls_pooled)
    (cls_pooled / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    no_tokenizer_json = tmp_path / "no-tokenizer-json"
    shutil.copytree(sentence_transformers.bundled_model_path(), no_tokenizer_json)
    (no_tokenizer_json / "tokenizer.json").unlink()
    for folder, reason in ((cls_pooled, "pooling_mode_cls_token"), (no_tokenizer_json, "no tokenizer.json")):
        caplog.clear()
        assert local_runtime(Settings(_env_file=None, embedding_model=str(folder))) == "torch"
        assert any(reason in str(getattr(r, "reason", "")) for r in caplog.records), caplog.records
        assert local_runtime(Settings(_env_file=None, embedding_model=str(folder), embedding_runtime="onnx")) == "onnx"
    assert local_runtime(Settings(_env_file=None, embedding_runtime="torch")) == "torch"


def test_the_onnx_cache_is_the_users_unless_set(monkeypatch, tmp_path):
    """Shared by every data dir on the host (an export is keyed by the model's digest)."""
    from config.resources import onnx_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache_dir(Settings(_env_file=None, data_dir=tmp_path / "a")) == tmp_path / "xdg" / "memorymesh" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_cache_dir(Settings(_env_file=None)) == tmp_path / "home" / ".cache" / "memorymesh" / "onnx"
    chosen = Settings(_env_file=None, embedding_onnx_cache_dir=tmp_path / "mine")
    assert onnx_cache_dir(chosen) == tmp_path / "mine"


def test_several_api_processes_share_the_cores_out_on_either_runtime(monkeypatch):
    from entrypoints.processes import child_env

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    for name in ("MEMORY_EMBEDDING_THREADS", "MEMORY_EMBEDDING_ONNX_THREADS"):
        monkeypatch.delenv(name, raising=False)
    env = child_env(Settings(_env_file=None, processes=4, port=8000), "postgresql://x", 4, "/tmp/metrics")
    assert env["MEMORY_EMBEDDING_THREADS"] == "2" and env["MEMORY_EMBEDDING_ONNX_THREADS"] == "2"
    chosen = Settings(_env_file=None, processes=4, port=8000, embedding_threads=3, embedding_onnx_threads=3)
    env = child_env(chosen, "postgresql://x", 4, "/tmp/metrics")
    assert "MEMORY_EMBEDDING_THREADS" not in env and "MEMORY_EMBEDDING_ONNX_THREADS" not in env  # theirs, kept
