"""Shared fixtures: one tiny model + tokenizer per test session, built like a real checkpoint."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from funreason.train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def sample_examples():
    from funreason.formats import read_examples
    from funreason.sample import sample_path

    return read_examples(sample_path())
