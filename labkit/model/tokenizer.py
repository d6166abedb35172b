"""The course tokenizer: word-level for the world's words, names split into syllable tokens.

It is a real Hugging Face fast tokenizer (a WordPiece model whose pieces are whole words and
consonant-vowel syllables), saved with a chat template. Introduced in notebook 00_tour.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from labkit.core import world

SPECIAL = {"pad": "<pad>", "unk": "<unk>", "bos": "<bos>", "eos": "<eos>"}
ROLES = ["<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} "
    "{% if m['role'] == 'assistant' %}<eos> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the tokenizer from the world's vocabulary (deterministic; no training needed)."""
    pieces = list(SPECIAL.values()) + ROLES + world.vocabulary()
    pieces += [s.capitalize() for s in world.SYLLABLES] + ["##" + s for s in world.SYLLABLES]
    vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token=SPECIAL["unk"], max_input_chars_per_word=40))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", additional_special_tokens=ROLES)
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 1024
    return fast
