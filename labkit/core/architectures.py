"""Real Llama-class architectures as data: sizes for counting, memory estimates and random-init models.

No hub access: the shapes below are the published configs' numbers, so a notebook can build a
SmolLM2-135M-shaped model with random weights, or count a 65B model's parameters, offline.
Introduced in notebooks 03_lora_rank (parameter counts) and 04_qlora_memory (memory).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Architecture:
    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(out_features, in_features) of each linear layer in one decoder block, by module name."""
        h, kv = self.hidden_size, self.num_key_value_heads * self.head_dim
        i = self.intermediate_size
        return {"q_proj": (h, h), "k_proj": (kv, h), "v_proj": (kv, h), "o_proj": (h, h),
                "gate_proj": (i, h), "up_proj": (i, h), "down_proj": (h, i)}

    def parameter_count(self) -> int:
        """All parameters (embeddings, blocks, norms, lm_head unless tied), as transformers builds it."""
        h = self.hidden_size
        block = sum(o * i for o, i in self.linear_shapes().values()) + 2 * h  # two RMSNorms
        embed = self.vocab_size * h
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return embed + self.num_hidden_layers * block + h + head  # + final norm

    def llama_config(self, **overrides):
        """A transformers LlamaConfig with these shapes (overrides win, e.g. num_hidden_layers=2)."""
        from transformers import LlamaConfig

        fields = {k: v for k, v in asdict(self).items() if k != "name"}
        fields.update(overrides)
        return LlamaConfig(**fields)

    def scaled(self, **changes) -> Architecture:
        """A copy with some shapes changed (a smaller ladder rung, a shorter vocabulary...)."""
        return replace(self, **changes)


# Published shapes (config.json of each model; LLaMA-1 for 33B/65B as in the QLoRA paper).
ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture("course-base", 256, 682, 4, 8, 8, 625, True),
    Architecture("SmolLM2-135M", 576, 1536, 30, 9, 3, 49152, True),
    Architecture("SmolLM2-360M", 960, 2560, 32, 15, 5, 49152, True),
    Architecture("SmolLM2-1.7B", 2048, 8192, 24, 32, 32, 49152, True),
    Architecture("Llama-2-7B", 4096, 11008, 32, 32, 32, 32000, False),
    Architecture("Llama-3-8B", 4096, 14336, 32, 32, 8, 128256, False),
    Architecture("Llama-2-13B", 5120, 13824, 40, 40, 40, 32000, False),
    Architecture("LLaMA-33B", 6656, 17920, 60, 52, 52, 32000, False),
    Architecture("LLaMA-65B", 8192, 22016, 80, 64, 64, 32000, False),
    Architecture("Llama-2-70B", 8192, 28672, 80, 64, 8, 32000, False),
]}


def get_architecture(name: str) -> Architecture:
    """The architecture called ``name``; one clear sentence if it is not known."""
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {name!r}: use one of {', '.join(ARCHITECTURES)}, "
                         "or build your own with labkit.architectures.Architecture(...).")
    return ARCHITECTURES[name]
