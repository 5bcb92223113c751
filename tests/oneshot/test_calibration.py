"""Calibration samples and held-out windows: the tokenizer's leading special tokens, consecutive text after them,
and perplexity in batches equal to a hand-written per-token reference."""
import math

import pytest
import torch

from utils.infra.errors import UserError
from utils.oneshot.calibration import draw_samples, eval_windows, leading_ids, perplexity

from tests.oneshot.test_oneshot import tiny_llama


class FakeTokenizer:
    """Encodes each character as its code point; with special tokens, `front` before and `back` after."""

    def __init__(self, front: list[int], back: list[int]) -> None:
        self.front, self.back = front, back

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        ids = [ord(c) for c in text]
        return {"input_ids": self.front + ids + self.back if add_special_tokens else ids}


@pytest.mark.parametrize("front, back", [([2], []), ([101], [102]), ([], [1]), ([], []), ([5, 6], [])])
def test_leading_ids_are_the_tokens_before_the_text(front, back):
    assert leading_ids(FakeTokenizer(front, back)) == front


def test_eval_windows_start_with_the_prefix_then_consecutive_text():
    stream = torch.arange(100, 130)
    windows = eval_windows(stream, 8, "en", prefix=[2])
    assert windows.shape == (4, 8)  # 30 tokens in stretches of 7; the last 2 dropped
    assert windows[:, 0].tolist() == [2, 2, 2, 2]
    assert windows[:, 1:].reshape(-1).tolist() == list(range(100, 128))
    assert torch.equal(eval_windows(stream, 8, "en"), stream[:24].reshape(3, 8))


def test_samples_start_with_the_prefix_and_are_stretches_of_the_stream():
    stream = torch.arange(1000, 1200)
    samples = draw_samples({"en": stream, "fr": stream + 1000}, 5, 16, seed=3, source="test", prefix=[2])
    assert samples.shape == (5, 16) and samples[:, 0].tolist() == [2] * 5
    for row, base in zip(samples, [1000, 1000, 1000, 2000, 2000]):  # en takes the odd sample
        body = row[1:]
        assert torch.equal(body, torch.arange(int(body[0]), int(body[0]) + 15)) and base <= body[0] < base + 200


def test_a_window_with_no_room_after_the_prefix_is_refused():
    with pytest.raises(UserError, match="no room"):
        eval_windows(torch.arange(50), 1, "en", prefix=[2])


def test_batched_perplexity_equals_the_per_token_reference(monkeypatch):
    monkeypatch.setattr("utils.oneshot.calibration.TOKENS_PER_BATCH", 32)  # batches of 4, 4 and 3 windows
    model = tiny_llama(vocab=64).eval()
    windows = torch.randint(0, 64, (11, 8), generator=torch.Generator().manual_seed(0))
    nll = []
    with torch.no_grad():
        for row in windows:
            logits = model(input_ids=row.unsqueeze(0)).logits[0]
            nll += [-torch.log_softmax(logits[i].double(), -1)[row[i + 1]].item() for i in range(len(row) - 1)]
    assert perplexity(model, windows, torch.device("cpu")) == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-5)
