"""Build tiny local stand-ins for mBERT, mT5 and decoder LLMs so the demo and the tests run offline in seconds.

    python scripts/build_tiny_models.py [--output_dir tiny_models] [--seed 0] [--force]

writes `<output_dir>/mbert-tiny/` (in place of `bert-base-multilingual-cased`), `<output_dir>/mt5-tiny/`
(in place of `google/mt5-base`) and the causal LMs `llama-tiny` (grouped-query attention: 4 query heads, 2
key/value heads), `qwen2-tiny`, `gemma3-tiny` (one key/value head) and `gpt2-tiny` (Conv1D projections), whose
tokenizers work offline: WordPiece over the same text with `<s>` before every text (as Llama's tokenizer puts it),
except qwen2-tiny's, a byte-level Qwen2Tokenizer (256 bytes, no merges), since transformers always loads a Qwen2
checkpoint's tokenizer as that class.
Each loads with `AutoTokenizer`/`AutoConfig`/`AutoModel*.from_pretrained(dir)`
and no network. The tokenizers are trained on every text file under the repo's `data/` plus a small built-in
multilingual text, so every language of the experiments has real sub-words rather than `<unk>`. The same inputs
and seed give byte-identical files.
"""
from __future__ import annotations

import argparse
import csv
import heapq
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"
MBERT_NAME = "mbert-tiny"
MT5_NAME = "mt5-tiny"
TARGET_VOCAB_SIZE = 5000
MODEL_MAX_LENGTH = 512
MT5_EXTRA_IDS = 100
BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DECODER_SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>"]
# JSON keys whose strings are natural-language text (NER tokens, XNLI pairs, MLM corpora, parallel sentences).
TEXT_FIELDS = frozenset({"tokens", "premise", "hypothesis", "text", "sentence", "source", "target", "translation"})
# Files that must all exist for a built model folder to count as complete.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

# Always mixed into the training text: keeps the tokenizers usable when data/ is empty and makes sure the
# prompt words and label words of the mT5 set-up are in the vocabulary.
FALLBACK_TEXT = """\
xnli premise: A man sleeps. hypothesis: A person rests.
entailment neutral contradiction entailment neutral contradiction
Marie Curie was born in Warsaw and worked in Paris.
The European Union signed a new agreement with Canada on Monday.
John Smith works for Google in New York.
The children are playing football in the park.
A woman is reading a book while drinking coffee.
The weather in London is cold and rainy in November.
Marie Curie est née à Varsovie et a travaillé à Paris.
L'Union européenne a signé un nouvel accord avec le Canada lundi.
Les enfants jouent au football dans le parc.
Une femme lit un livre en buvant un café.
Il fait froid et humide à Londres en novembre.
Marie Curie nació en Varsovia y trabajó en París.
La Unión Europea firmó un nuevo acuerdo con Canadá el lunes.
Los niños están jugando al fútbol en el parque.
Una mujer lee un libro mientras bebe café.
El señor García vive en Madrid desde hace años.
Мария Кюри родилась в Варшаве и работала в Париже.
Европейский союз подписал новое соглашение с Канадой в понедельник.
Дети играют в футбол в парке.
Женщина читает книгу и пьёт кофе.
В Москве зимой очень холодно.
玛丽·居里出生在华沙，在巴黎工作。
欧盟星期一与加拿大签署了一项新协议。
孩子们在公园里踢足球。
一个女人一边喝咖啡一边看书。
北京的冬天很冷。
ولدت ماري كوري في وارسو وعملت في باريس.
وقع الاتحاد الأوروبي اتفاقية جديدة مع كندا يوم الاثنين.
الأطفال يلعبون كرة القدم في الحديقة.
امرأة تقرأ كتابا وهي تشرب القهوة.
الطقس في القاهرة حار في الصيف.
ماری کوری در ورشو به دنیا آمد و در پاریس کار کرد.
اتحادیه اروپا روز دوشنبه توافق جدیدی با کانادا امضا کرد.
بچه‌ها در پارک فوتبال بازی می‌کنند.
زنی در حال خواندن کتاب قهوه می‌نوشد.
هوای تهران در زمستان سرد است.
0 1 2 3 4 5 6 7 8 9 10 100 2022 1867 , . ; : ! ? ' " ( ) - % $ & / @ #
"""


def iter_json_text(value: object, key: str | None = None, is_text: bool | None = None) -> Iterator[str]:
    """Yield the sentences in a decoded JSON value: strings under a TEXT_FIELDS key, at any depth.

    Strings under other keys (ids, languages, NER tags, labels) are skipped so they stay out of the vocab.
    is_text is None at the top level, where bare strings count as text. A `tokens` list is one sentence.
    """
    if isinstance(value, str):
        if is_text is not False:
            yield value
    elif isinstance(value, list):
        if key == "tokens" and all(isinstance(item, str) for item in value):
            yield " ".join(value)
        else:
            for item in value:
                yield from iter_json_text(item, key, is_text)
    elif isinstance(value, dict):
        for child in sorted(value):
            yield from iter_json_text(value[child], child, bool(is_text) or child in TEXT_FIELDS)


def read_jsonl(path: Path) -> Iterator[str]:
    """Text of a JSON-lines file (NER `tokens`, XNLI `premise`/`hypothesis`, ...)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield from iter_json_text(json.loads(line))


def read_json(path: Path) -> Iterator[str]:
    """Text of a JSON file (the MLM corpora hold records with a `text` field)."""
    with path.open(encoding="utf-8") as handle:
        yield from iter_json_text(json.load(handle))


def read_tsv(path: Path) -> Iterator[str]:
    """Every cell of a tab-separated file (parallel sentences)."""
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield from row


def read_plain(path: Path) -> Iterator[str]:
    """Lines of any other text file."""
    with path.open(encoding="utf-8") as handle:
        yield from handle


READERS: dict[str, Callable[[Path], Iterator[str]]] = {
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".tsv": read_tsv,
    ".txt": read_plain,
}


def collect_texts(data_dir: Path) -> list[str]:
    """All training text: the built-in sentences, then every readable file under data_dir in sorted order.

    Sorted paths and a fixed order keep the result (and so the vocab) independent of the file system.
    Unreadable or malformed files are skipped: another process may still be writing data/.
    """
    texts = [line for line in FALLBACK_TEXT.splitlines() if line.strip()]
    if not data_dir.is_dir():
        return texts
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix in READERS):
        try:
            texts.extend(t.strip() for t in READERS[path.suffix](path) if t.strip())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error):
            continue
    return texts


def bert_words(texts: list[str]) -> Counter[str]:
    """Word counts after mBERT's own normalisation and pre-tokenisation (cased, accents kept, CJK split)."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def word_pairs(symbols: list[str]) -> Counter[tuple[str, str]]:
    """Adjacent symbol pairs of one word, with multiplicity."""
    return Counter(zip(symbols, symbols[1:]))


def merge_pair(symbols: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    """Replace every non-overlapping occurrence of pair, left to right."""
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def train_wordpiece(texts: list[str], vocab_size: int) -> dict[str, int]:
    """Cased multilingual WordPiece vocab, learnt BPE-style like tokenizers' WordPieceTrainer.

    Written out here because tokenizers' trainers break ties between equally frequent pairs in hash-map order,
    which changes from run to run (tokenizers 0.23: 947-950 tokens over six runs on the same text). Here ties
    go to the lexicographically smallest pair, so the vocab is a pure function of the text. Every character
    gets both a word-initial and a `##` form, so no word made of seen characters becomes [UNK].
    """
    counts = bert_words(texts)
    words = sorted(counts)
    splits = [[word[0]] + ["##" + char for char in word[1:]] for word in words]
    chars = sorted({char for word in words for char in word})
    vocab = list(BERT_SPECIAL_TOKENS) + chars + ["##" + char for char in chars]
    known = set(vocab)

    pair_counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for index, symbols in enumerate(splits):
        for pair, n in word_pairs(symbols).items():
            pair_counts[pair] += n * counts[words[index]]
            where.setdefault(pair, set()).add(index)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)

    while len(vocab) < vocab_size and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative_count or negative_count == 0:
            continue  # stale heap entry
        merged = pair[0] + pair[1][2:]  # the right symbol is always a "##" continuation
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
        changed: set[tuple[str, str]] = set()
        for index in sorted(where.pop(pair)):
            freq = counts[words[index]]
            old = word_pairs(splits[index])
            splits[index] = merge_pair(splits[index], pair, merged)
            new = word_pairs(splits[index])
            for p in old.keys() | new.keys():
                delta = (new[p] - old[p]) * freq
                if delta:
                    pair_counts[p] += delta
                    changed.add(p)
                if new[p]:
                    where.setdefault(p, set()).add(index)
        for p in sorted(changed):
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
    return {token: index for index, token in enumerate(vocab)}


def train_unigram(texts: list[str], vocab_size: int) -> tuple[list[tuple[str, float]], bytes]:
    """SentencePiece Unigram vocab (pad=0, </s>=1, <unk>=2) and its NFKC charsmap, trained as mT5's was.

    The sentencepiece library rather than tokenizers' UnigramTrainer, whose output also changes from run to run.
    One thread: the EM sums floats per thread, so the thread count would change the scores.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=proto,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # small corpora cannot fill the vocab; take what they give
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        shuffle_input_sentence=False,
        max_sentence_length=1 << 16,  # keep long MLM paragraphs (the default drops lines over 4 KiB)
        num_threads=1,
        minloglevel=2,
    )
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(proto.getvalue())
    pieces = [(piece.piece, float(piece.score)) for piece in model.pieces]
    return pieces, model.normalizer_spec.precompiled_charsmap


def build_bert_tokenizer(texts: list[str], out_dir: Path):
    """Save a fast, cased BERT tokenizer (same class and settings as mBERT's) and return it."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer(
        vocab=train_wordpiece(texts, TARGET_VOCAB_SIZE),
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=MODEL_MAX_LENGTH,
    )
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def build_t5_tokenizer(texts: list[str], out_dir: Path):
    """Save an mT5-layout tokenizer (pad=0, </s>=1, <unk>=2, sentinels last) and return it."""
    from transformers import T5Tokenizer

    vocab, charsmap = train_unigram(texts, TARGET_VOCAB_SIZE - MT5_EXTRA_IDS)
    # As in mT5, <extra_id_0> is the last id and the sentinels count down before it.
    vocab += [(f"<extra_id_{i}>", 0.0) for i in reversed(range(MT5_EXTRA_IDS))]
    tokenizer = T5Tokenizer(
        vocab=vocab,
        extra_ids=MT5_EXTRA_IDS,
        model_max_length=MODEL_MAX_LENGTH,
        _spm_precompiled_charsmap=charsmap,  # the same hook T5Tokenizer uses when it reloads tokenizer.json
    )
    check_label_words(tokenizer)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def check_label_words(tokenizer) -> None:
    """Fail the build if an XNLI label word would not decode back to itself (mT5 is scored on them)."""
    if str(REPO_ROOT) not in sys.path:  # run as `python scripts/build_tiny_models.py`
        sys.path.insert(0, str(REPO_ROOT))
    from utils.tasks.xnli import LABELS

    for word in LABELS:
        decoded = tokenizer.decode(tokenizer(text_target=word)["input_ids"], skip_special_tokens=True)
        if decoded != word:
            raise RuntimeError(f"mt5 tokenizer does not round-trip label word {word!r}: got {decoded!r}")


def build_bert_model(vocab_size: int, seed: int, out_dir: Path) -> int:
    """Save a seeded random BertForPreTraining (pooler and MLM head included, like mBERT); return #params."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=MODEL_MAX_LENGTH,
        type_vocab_size=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = BertForPreTraining(config)
    model.save_pretrained(out_dir)
    return sum(p.numel() for p in model.parameters())


def build_mt5_model(tokenizer, seed: int, out_dir: Path) -> int:
    """Save a seeded random MT5ForConditionalGeneration shaped like a miniature mt5-base; return #params."""
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration

    config = MT5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_kv=16,
        num_heads=2,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,  # overridden to True by transformers 5; see untie_lm_head
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = MT5ForConditionalGeneration(config)
    untie_lm_head(model)
    model.save_pretrained(out_dir)
    return sum(p.numel() for p in model.parameters())


def untie_lm_head(model) -> None:
    """Give the LM head its own weights, as mt5-base has (its config says tie_word_embeddings=False).

    transformers 5 forces MT5Config.tie_word_embeddings to True whatever is passed, so the constructor ties
    lm_head to the shared embedding. Untied here, both tensors are saved; on load transformers sees two
    different tensors and keeps them apart (with the same warning it prints for google/mt5-base).
    """
    import torch

    weight = torch.empty_like(model.shared.weight)
    torch.nn.init.normal_(weight, mean=0.0, std=model.config.initializer_factor)  # MT5's init for an untied head
    model.lm_head.weight = torch.nn.Parameter(weight)
    model.config.tie_word_embeddings = False


def build_mbert(texts: list[str], seed: int, out_dir: Path) -> tuple[int, int]:
    """Tokenizer and model for mbert-tiny; returns (vocab size, #params)."""
    tokenizer = build_bert_tokenizer(texts, out_dir)
    return len(tokenizer), build_bert_model(len(tokenizer), seed, out_dir)


def build_mt5(texts: list[str], seed: int, out_dir: Path) -> tuple[int, int]:
    """Tokenizer and model for mt5-tiny; returns (vocab size, #params)."""
    tokenizer = build_t5_tokenizer(texts, out_dir)
    return len(tokenizer), build_mt5_model(tokenizer, seed, out_dir)


# -- decoder LLMs ---------------------------------------------------------------------------------------------------

# Each tiny decoder: its transformers config class, its tokenizer ("wordpiece" or "bytes") and the shape values
# (vocabulary and special ids are added).
DECODER_SHAPES: dict[str, tuple[str, str, dict]] = {
    "llama-tiny": ("LlamaConfig", "wordpiece", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                       tie_word_embeddings=False)),
    "qwen2-tiny": ("Qwen2Config", "bytes", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                                       tie_word_embeddings=True)),
    "gemma3-tiny": ("Gemma3TextConfig", "wordpiece", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                             max_position_embeddings=512, sliding_window=32,
                                             tie_word_embeddings=True)),
    "gpt2-tiny": ("GPT2Config", "wordpiece", dict(n_embd=64, n_inner=128, n_layer=2, n_head=4, n_positions=512,
                                     tie_word_embeddings=True)),
}


def build_decoder_tokenizer(texts: list[str], out_dir: Path):
    """Save a fast WordPiece tokenizer for the causal LMs (the deterministic vocab of mbert-tiny, with <pad>,
    <unk>, <s>, </s> in place of BERT's specials; <s> goes before every text) and return it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    learnt = list(train_wordpiece(texts, TARGET_VOCAB_SIZE))[len(BERT_SPECIAL_TOKENS):]
    vocab = {token: index for index, token in enumerate(DECODER_SPECIAL_TOKENS + learnt)}
    core = Tokenizer(models.WordPiece(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                 lowercase=False)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                        special_tokens=[("<s>", vocab["<s>"])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", model_max_length=MODEL_MAX_LENGTH)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def build_byte_tokenizer(out_dir: Path):
    """Save a byte-level Qwen2Tokenizer (the 256 bytes in GPT-2's byte-to-unicode order, no merges) and return it."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    characters = bytes_to_unicode()
    vocab = {characters[byte]: byte for byte in range(256)}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|endoftext|>",
                               pad_token="<|endoftext|>", model_max_length=MODEL_MAX_LENGTH)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def build_decoder_model(name: str, tokenizer, seed: int, out_dir: Path) -> int:
    """Save a seeded random causal LM of the shape DECODER_SHAPES[name]; return #params."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    class_name, _, shape = DECODER_SHAPES[name]
    config = getattr(transformers, class_name)(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **shape)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out_dir)
    return sum(p.numel() for p in model.parameters())


def build_decoder(name: str, texts: list[str], seed: int, out_dir: Path) -> tuple[int, int]:
    """Tokenizer and model for one tiny decoder; returns (vocab size, #params)."""
    kind = DECODER_SHAPES[name][1]
    tokenizer = build_byte_tokenizer(out_dir) if kind == "bytes" else build_decoder_tokenizer(texts, out_dir)
    return len(tokenizer), build_decoder_model(name, tokenizer, seed, out_dir)


def is_complete(model_dir: Path) -> bool:
    """A folder counts as built only if every file a loader needs is there (it is renamed into place last)."""
    return all((model_dir / name).is_file() for name in REQUIRED_FILES)


def make_readable(folder: Path) -> None:
    """Give the folder and its files the usual umask modes: mkdtemp (and safetensors' writer) use owner-only ones."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def build_atomically(
    name: str, output_dir: Path, build: Callable[[Path], tuple[int, int]], force: bool
) -> None:
    """Build into a temporary sibling folder and rename it into place, so a crash never leaves a half model."""
    final_dir = output_dir / name
    if is_complete(final_dir) and not force:
        print(f"{final_dir}: exists and is complete, skipped (use --force to rebuild)")
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=output_dir))
    try:
        vocab_size, n_params = build(tmp_dir)
        make_readable(tmp_dir)
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(tmp_dir, final_dir)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
    seconds = time.perf_counter() - start
    megabytes = sum(path.stat().st_size for path in final_dir.iterdir()) / 1e6
    print(f"{final_dir}: vocab {vocab_size}, {n_params:,} parameters, {megabytes:.1f} MB, {seconds:.1f} s")


def model_names() -> list[str]:
    """Every folder build_all writes."""
    return [MBERT_NAME, MT5_NAME, *DECODER_SHAPES]


def build_all(output_dir: Path, seed: int = 0, force: bool = False, data_dir: Path = DEFAULT_DATA_DIR) -> None:
    """Build every tiny model under output_dir (each skipped if already complete unless force)."""
    needed = force or not all(is_complete(output_dir / name) for name in model_names())
    texts = collect_texts(data_dir) if needed else []
    build_atomically(MBERT_NAME, output_dir, lambda d: build_mbert(texts, seed, d), force)
    build_atomically(MT5_NAME, output_dir, lambda d: build_mt5(texts, seed, d), force)
    for name in DECODER_SHAPES:
        build_atomically(name, output_dir, lambda d, name=name: build_decoder(name, texts, seed, d), force)


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    """Command-line options; argv=None reads sys.argv (tests pass a list)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, default=Path("tiny_models"), help="where to write the models")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folders are complete")
    parser.add_argument(
        "--data_dir", type=Path, default=DEFAULT_DATA_DIR, help="text to train the tokenizers on (default: repo data/)"
    )
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> None:
    """Entry point: build (or skip) both tiny models."""
    args = parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # transformers 5 draws a bar for every one-shard save
    build_all(args.output_dir, seed=args.seed, force=args.force, data_dir=args.data_dir)


if __name__ == "__main__":
    main()
