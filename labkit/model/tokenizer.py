"""The course tokenizer: word-level for the world's words, names split into syllable tokens.

It is a real Hugging Face fast tokenizer (a WordPiece model whose pieces are whole words and
consonant-vowel syllables), saved with a chat template. Version 2 keeps every version-1 piece at
its id, appends world v2's words, and adds single letters as a last resort, so a word the
vocabulary lacks (the second domain's jargon: ``brinwort``) splits into syllables and letters
instead of becoming ``<unk>``. Its chat template marks the assistant's turns with
``{% generation %}``, which TRL's ``assistant_only_loss`` needs. Introduced in notebook 00_tour.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from labkit.core import world

SPECIAL = {"pad": "<pad>", "unk": "<unk>", "bos": "<bos>", "eos": "<eos>"}
ROLES = ["<|system|>", "<|user|>", "<|assistant|>"]
VERSIONS = (1, 2)
CHAT_TEMPLATES = {
    1: ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} "
        "{% if m['role'] == 'assistant' %}<eos> {% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"),
    # The assistant's words and its <eos> are the generation (the loss of assistant_only_loss).
    2: ("{% for m in messages %}{% if m['role'] == 'assistant' %}<|assistant|> "
        "{% generation %}{{ m['content'] }} <eos>{% endgeneration %} "
        "{% else %}<|{{ m['role'] }}|> {{ m['content'] }} {% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"),
}


def pieces(version: int) -> list[str]:
    """The vocabulary in id order: version 1's pieces first, so version 2 extends it."""
    if version not in VERSIONS:
        raise ValueError(f"Unknown tokenizer version {version!r}: choose one of {VERSIONS}.")
    out = list(SPECIAL.values()) + ROLES + world.vocabulary()
    out += [s.capitalize() for s in world.SYLLABLES] + ["##" + s for s in world.SYLLABLES]
    if version == 2:
        out += world.vocabulary_v2() + list(world.SYLLABLES)
        letters = string.ascii_lowercase
        out += list(letters) + ["##" + c for c in letters] + list(string.ascii_uppercase)
    return list(dict.fromkeys(out))


def build_tokenizer(version: int = 1) -> PreTrainedTokenizerFast:
    """Build the tokenizer of ``version`` from the world's vocabulary (deterministic; no training)."""
    vocab = {p: i for i, p in enumerate(pieces(version))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token=SPECIAL["unk"], max_input_chars_per_word=40))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", additional_special_tokens=ROLES)
    fast.chat_template = CHAT_TEMPLATES[version]
    fast.model_max_length = 1024
    return fast
