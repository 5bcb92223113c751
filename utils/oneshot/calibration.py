"""Calibration samples and held-out perplexity for one-shot pruning.

Text comes from a local file (plain text, one document per line; or JSON lines with a "text" field, as
wikiextractor and C4 shards write them; '{lang}' in the path is replaced by each language) or from a hub dataset
through `utils.infra.data.load_split`. Each language's documents are tokenised without special tokens and joined
(the tokenizer's EOS token, where it has one, between them) into one stream; a sample is a window of
--calibration_seq_len consecutive tokens starting at a position drawn with --seed, as the reference implementations
draw windows from C4 documents. Several languages share the samples equally.

Every window (calibration sample or held-out window) starts with the tokens the tokenizer puts before a text
(`leading_ids`: Gemma's and Llama's <bos>, BERT's [CLS]; none for GPT-2 or T5), then seq_len minus those tokens
of the stream. Models trained with a BOS at position 0 use it as an attention sink: Gemma 3 270M's held-out
perplexity on English verses is about 10x lower with it (docs/llm.md).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Optional, Sequence

import torch

from utils.infra.args import DataArguments
from utils.infra.data import data_file, load_split
from utils.infra.errors import UserError, first_line
from utils.infra.validation import language_file_map


def check_text_file(template: str, lang: str, flag: str) -> Path:
    path = Path(data_file(template, lang))
    if not path.is_file():
        raise UserError(f"{flag}: file not found: {path} (language '{lang}')")
    if path.stat().st_size == 0:
        raise UserError(f"{flag}: {path} is empty")
    return path


def is_json_lines(path: Path) -> bool:
    """JSON lines with a "text" field (.jsonl, .gz, or a file starting with '{' that is not .txt), else plain text."""
    if path.suffix == ".txt":
        return False
    if path.suffix in (".jsonl", ".gz"):
        return True
    with open(path, "rb") as handle:
        return handle.read(4096).lstrip().startswith(b"{")


def read_documents(template: Optional[str], lang: str, flag: str, dataset_name: Optional[str] = None,
                   split: str = "train") -> list[str]:
    """The non-empty documents of one language, from a local file or a hub dataset."""
    if template is None:
        data_args = DataArguments(data_language=lang, dataset_name=dataset_name)
        return [t for t in load_split(data_args, lang, split, {"text": "text"})["text"] if t.strip()]
    path = check_text_file(template, lang, flag)
    if is_json_lines(path):
        data_args = DataArguments(data_language=lang, train_file=str(path))
        documents = load_split(data_args, lang, "train", {"text": "text"})["text"]
    else:
        try:
            documents = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise UserError(f"{flag}: {path} is not UTF-8 text ({first_line(error)})") from None
    documents = [d for d in documents if d.strip()]
    if not documents:
        raise UserError(f"{flag}: {path} holds no text")
    return documents


def token_stream(tokenizer, documents: Sequence[str]) -> torch.Tensor:
    """All documents' token ids in one 1-D tensor, EOS between documents when the tokenizer has one."""
    ids = tokenizer(list(documents), add_special_tokens=False)["input_ids"]
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    flat: list[int] = []
    for index, document in enumerate(ids):
        flat.extend((separator if index else []) + document)
    return torch.tensor(flat, dtype=torch.long)


def leading_ids(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (its BOS or CLS), found by encoding one word with and
    without special tokens; [] when it adds none in front."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start: start + len(plain)] == plain:
            return list(full[:start])
    return []


def _content_length(seq_len: int, prefix: Sequence[int]) -> int:
    if seq_len <= len(prefix):
        raise UserError(f"a window of {seq_len} tokens has no room after the tokenizer's {len(prefix)} leading "
                        "special token(s): raise the sequence length")
    return seq_len - len(prefix)


def _with_prefix(rows: torch.Tensor, prefix: Sequence[int]) -> torch.Tensor:
    if not prefix:
        return rows
    return torch.cat([torch.tensor(prefix, dtype=rows.dtype).expand(rows.shape[0], -1), rows], dim=1)


def draw_samples(streams: dict[str, torch.Tensor], count: int, seq_len: int, seed: int, source: str,
                 prefix: Sequence[int] = ()) -> torch.Tensor:
    """(count, seq_len) token windows, `prefix` then the stream, an equal share per language (the first ones take
    the remainder)."""
    generator = torch.Generator().manual_seed(seed)
    length = _content_length(seq_len, prefix)
    rows = []
    for index, (lang, stream) in enumerate(streams.items()):
        if stream.numel() < length:
            raise UserError(f"{source} ({lang}) holds {stream.numel()} tokens, fewer than one sample of "
                            f"--calibration_seq_len {seq_len}")
        share = count // len(streams) + (1 if index < count % len(streams) else 0)
        starts = torch.randint(0, stream.numel() - length + 1, (share,), generator=generator)
        rows += [stream[s: s + length] for s in starts.tolist()]
    return _with_prefix(torch.stack(rows), prefix)


def samples_sha256(samples: torch.Tensor) -> str:
    """A hash of the samples' token ids (int64, row by row): the same text, tokenizer and seed give the same hash."""
    return hashlib.sha256(samples.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def parse_eval_files(value: Optional[str]) -> dict[str, str]:
    """'en=PATH,fr=PATH' -> {'en': PATH, 'fr': PATH}; each file checked now."""
    found = language_file_map("eval_files", value) if value else {}
    for lang, path in found.items():
        check_text_file(path, lang, "--eval_files")
    return found


def eval_windows(stream: torch.Tensor, seq_len: int, lang: str, prefix: Sequence[int] = ()) -> torch.Tensor:
    """Windows of seq_len tokens: `prefix`, then consecutive non-overlapping stretches of the stream (the remainder
    is dropped), as Wanda evaluates."""
    length = _content_length(seq_len, prefix)
    count = stream.numel() // length
    if count == 0:
        raise UserError(f"--eval_files ({lang}) holds {stream.numel()} tokens, fewer than one window of "
                        f"--calibration_seq_len {seq_len}")
    return _with_prefix(stream[: count * length].reshape(count, length), prefix)


TOKENS_PER_BATCH = 1024  # windows scored together; the logits take TOKENS_PER_BATCH x vocabulary floats


@torch.no_grad()
def perplexity(model, windows: torch.Tensor, device: torch.device) -> float:
    """exp(mean next-token negative log-likelihood) over every predicted token of the windows (a leading BOS is
    read, never predicted)."""
    total, tokens = 0.0, 0
    rows = max(1, TOKENS_PER_BATCH // windows.shape[1])
    for start in range(0, windows.shape[0], rows):
        ids = windows[start: start + rows].to(device)
        loss = model(input_ids=ids, labels=ids).loss  # the mean over every row's seq_len - 1 predictions
        total += float(loss) * ids.shape[0] * (ids.shape[1] - 1)
        tokens += ids.shape[0] * (ids.shape[1] - 1)
    return math.exp(total / tokens)


