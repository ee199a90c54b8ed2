"""A tiny random DeepSeek-OCR-2 (about 1 MB) saved as a real checkpoint folder, built at test time."""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = [
    "<bos>",
    "<eos>",
    "<pad>",
    "<image>",
    "<|grounding|>",
    "<|ref|>",
    "<|/ref|>",
    "<|det|>",
    "<|/det|>",
]
CORPUS = [
    "Convert the document to markdown.",
    "Free OCR.",
    "Parse the figure.",
    "Describe this image in detail.",
    "Locate the text in the image.",
    "Invoice total amount due 0123456789 [[ ]] , # | - table row cell",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]


def build_tokenizer(*, vocab_size: int | None = None, pad: bool = True, bos_first: bool = True):
    """A byte-level BPE with the model's special tokens first, left padding, bos prepended.

    `vocab_size` pads the vocabulary with multi-byte tokens (a full-size vocabulary decodes what a
    random full-size model writes); `pad=False` leaves out the pad token and `bos_first=False` the
    template that puts BOS first: both as broken checkpoints ship them.
    """
    import json
    from itertools import product

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    if vocab_size is not None and vocab_size > tokenizer.get_vocab_size():
        state = json.loads(tokenizer.to_str())
        vocab = state["model"]["vocab"]
        alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
        for pair in product(alphabet, repeat=3):
            if len(vocab) >= vocab_size:
                break
            vocab.setdefault("".join(pair), len(vocab))
        tokenizer = Tokenizer.from_str(json.dumps(state))
    if bos_first:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", 0)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>" if pad else None,
        additional_special_tokens=SPECIAL_TOKENS[3:],
        padding_side="left",
    )


def tiny_config(vocab_size: int, image_token_id: int):
    """The smallest configuration that keeps the real geometry (1024 global, 768 tiles, patch 16)."""
    from transformers import DeepseekOcr2Config

    return DeepseekOcr2Config(
        vision_config={
            "sam_config": {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "mlp_dim": 64,
                "output_channels": 16,
                "downsample_channels": [16, 32],
                "global_attn_indexes": [],
                # The default (1e-10) leaves SAM dead: every image then gives the same logits, and a
                # test cannot tell whose image a row of a batch was given.
                "initializer_range": 0.02,
            },
            "encoder_config": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "vocab_size": 1,
            },
        },
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "moe_intermediate_size": 16,
            "mlp_layer_types": ["dense", "sparse"],
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 2,
        },
        image_token_id=image_token_id,
    )


def build_tiny_model(folder: Path, seed: int = 0, *, pad: bool = True, bos_first: bool = True) -> Path:
    """Write tokenizer, processor and random weights to `folder`, loadable like the real checkpoint."""
    import torch
    from transformers import AutoModelForImageTextToText, DeepseekOcr2ImageProcessorPil, DeepseekOcr2Processor

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(pad=pad, bos_first=bos_first)
    processor = DeepseekOcr2Processor(image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    torch.manual_seed(seed)
    config = tiny_config(len(tokenizer), tokenizer.convert_tokens_to_ids("<image>"))
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.bos_token_id = 0
    model.generation_config.eos_token_id = 1
    model.generation_config.pad_token_id = 2
    model.save_pretrained(folder)
    return folder
