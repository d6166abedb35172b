"""Domain adaptation (notebook 10): the extended tokenizer round-trips the herbal, resized embeddings keep
every old row, continued pretraining and task tuning train copies, the adapted model reloads with its tokenizer."""

import copy

import pytest
import torch

from labkit.core import domain as D
from labkit.core import world as W
from labkit.model.tokenizer import build_tokenizer
from labkit.topics import domain_adaptation as DA

WORLD = W.make_world(0)


def _bpe():
    """A tiny byte-level BPE tokenizer (pieces carry their leading space, as SmolLM2's and Qwen's do)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(["the herb grows near the river ."] * 20,
                          trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=t)


def test_extended_tokenizer_round_trips_the_domain_text_with_one_token_per_jargon_word():
    tok = build_tokenizer(2)
    size = len(tok)
    ext = DA.extend_tokenizer(tok, D.jargon())
    assert len(tok) == size and len(ext) == size + len(D.jargon())  # a copy; the original keeps its vocabulary
    assert DA.tokens_per_word(tok, D.jargon()) > 3 and DA.tokens_per_word(ext, D.jargon()) == 1
    for text in D.domain_text(WORLD)[:40] + [r["prompt"] + " " + r["answer"] for r in D.domain_task(WORLD, "test")]:
        ids = ext(text).input_ids
        assert ext.decode(ids, skip_special_tokens=True) == text
        assert len(ids) < len(tok(text).input_ids)
    plain = "Q : where does Bala Tiro live ? A :"  # no jargon: the old ids exactly
    assert ext(plain).input_ids == tok(plain).input_ids
    # a word is matched whole only: 'skelthorn' is not 'skelt' + 'horn', 'skeltx' stays pieces
    assert ext.tokenize("skelthorn skelt") == ["skelthorn", "skelt"] and "skelt" not in ext.tokenize("skeltx")
    assert DA.new_token_ids(tok, ext) == {ext.convert_tokens_to_ids(w): w for w in D.jargon()}


def test_a_tokenizer_whose_pieces_carry_their_space_gets_spaced_tokens():
    bpe = _bpe()
    words = ["brinwort", "skelt", "skelthorn"]
    assert DA.tokens_per_word(bpe, words) > 3
    ext = DA.extend_tokenizer(bpe, words)
    assert DA.tokens_per_word(ext, words) == 1
    text = "herbal : brinwort eases the skelt near skelthorn ."
    assert ext.decode(ext(text).input_ids) == text
    assert sorted(DA.new_token_ids(bpe, ext).values()) == sorted(words)


def test_tokens_per_word_needs_words():
    with pytest.raises(ValueError, match="at least one"):
        DA.tokens_per_word(build_tokenizer(2), [])


def _untied(tok):
    from transformers import LlamaForCausalLM

    from labkit.model.pretrain import PretrainConfig, model_config

    torch.manual_seed(0)
    config = model_config(tok, PretrainConfig(hidden=32, layers=1, heads=2))
    config.tie_word_embeddings = False
    return LlamaForCausalLM(config)


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_resized_embeddings_keep_every_old_row_and_start_new_ones_at_the_sub_token_mean(tiny_v2, kind):
    model, tok = tiny_v2
    if kind == "untied":
        model = _untied(tok)
    assert DA.tied(model) == (kind == "tied")
    ext = DA.extend_tokenizer(tok, D.jargon())
    inp, out = (model.get_input_embeddings().weight.detach().clone(),
                model.get_output_embeddings().weight.detach().clone())
    DA.resize_embeddings(model, tok, ext, init="mean")
    new_in, new_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert new_in.shape[0] == len(ext) and new_out.shape[0] == len(ext)
    assert torch.equal(new_in[: len(tok)], inp) and torch.equal(new_out[: len(tok)], out)
    assert DA.tied(model) == (kind == "tied")
    for word in ("brinwort", "marshcough"):
        pieces = tok(f" {word}", add_special_tokens=False).input_ids
        i = ext.convert_tokens_to_ids(word)
        assert torch.allclose(new_in[i], inp[pieces].mean(0)) and torch.allclose(new_out[i], out[pieces].mean(0))
    logits = model(input_ids=torch.tensor([ext("herbal : brinwort eases the skelt .").input_ids])).logits
    assert logits.shape[-1] == len(ext) and torch.isfinite(logits).all()


def test_random_init_is_at_the_embedding_scale_and_keeps_old_rows(tiny_v2):
    model, tok = tiny_v2
    ext = DA.extend_tokenizer(tok, D.jargon())
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(7.0)  # a scale of its own, not the initializer's 0.02
    old = model.get_input_embeddings().weight.detach().clone()
    DA.resize_embeddings(model, tok, ext, init="random", seed=1)
    weight = model.get_input_embeddings().weight.detach()
    assert torch.equal(weight[: len(tok)], old)
    new = weight[len(tok):]
    assert 0.7 < float(new.std() / old.std()) < 1.3
    i = ext.convert_tokens_to_ids("brinwort")
    assert not torch.allclose(weight[i], old[tok(" brinwort", add_special_tokens=False).input_ids].mean(0))
    with pytest.raises(ValueError, match="embedding init"):
        DA.resize_embeddings(model, tok, ext, init="zeros")


def test_general_text_is_mixed_in_at_its_share_and_every_domain_doc_is_kept():
    docs = D.domain_text(WORLD)[:30]
    mixed = DA.mix_general(docs, WORLD, 0.25)
    assert sorted(d for d in mixed if d in docs) == sorted(docs)
    general = DA.general_text(WORLD, len(mixed) - len(docs))  # the stream's first documents, whole
    assert sorted(d for d in mixed if d not in docs) == sorted(general)
    assert DA.word_count(general) / DA.word_count(mixed) >= 0.25  # the share is reached, by words...
    # ...with no document more than needed
    assert DA.word_count(general[:-1]) / DA.word_count(docs + general[:-1]) < 0.25
    assert not set(mixed[: len(general)]) <= set(general)  # shuffled: general text is not all at the start
    assert DA.mix_general(docs, WORLD, 0.5) != mixed and DA.word_count(["a b .", "c"]) == 4
    assert DA.mix_general(docs, WORLD, 0.0) != docs and sorted(DA.mix_general(docs, WORLD, 0.0)) == sorted(docs)
    assert DA.general_text(WORLD, 5) == DA.general_text(WORLD, 5) != DA.general_text(WORLD, 5, seed=1)
    assert not any("herbal" in t for t in DA.general_text(WORLD, 20))
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="general_share"):
            DA.mix_general(docs, WORLD, bad)


def test_continued_pretraining_and_task_tuning_train_copies(tiny_v2, tmp_path):
    model, tok = tiny_v2
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    dapt = DA.continued_pretraining(model, tok, D.domain_text(WORLD)[:8], world=WORLD, general_share=0.5,
                                    out_dir=str(tmp_path), steps=2, batch_size=4, lr=1e-2, progress=False)
    assert dapt.steps == 2 and dapt.model is not model
    assert dapt.trainer.args.train_sampling_strategy == "group_by_length"  # long general documents batch together
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert any(not torch.equal(p.detach().cpu(), before[n]) for n, p in dapt.model.named_parameters())
    with pytest.raises(ValueError, match="world="):
        DA.continued_pretraining(model, tok, ["herbal : x"], general_share=0.5, out_dir=str(tmp_path), steps=1)
    rows = D.domain_task(WORLD, "train")[:8]
    tuned = DA.task_tuning(model, tok, rows, out_dir=str(tmp_path), steps=2, batch_size=4, lr=1e-2, progress=False)
    assert tuned.steps == 2 and all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert any(not torch.equal(p.detach().cpu(), before[n]) for n, p in tuned.model.named_parameters())
    # the task's loss is on the answer only: every label before the answer is ignored
    example = tuned.trainer.train_dataset[0]
    n_prompt = len(tok(rows[0]["prompt"]).input_ids)
    assert set(example["labels"][:n_prompt]) == {-100} and -100 not in example["labels"][n_prompt:]


def test_task_accuracy_is_exact_match_overall_and_per_field(tiny_v2, monkeypatch):
    model, tok = tiny_v2
    rows = D.domain_task(WORLD, "test")[:8]  # two herbs, four fields each
    got = DA.task_accuracy(model, tok, rows)
    assert set(got) == {"accuracy", *D.FIELDS} and 0 <= got["accuracy"] <= 1
    hits = [r["field"] in ("part", "ailment") or r["herb"] == rows[0]["herb"] for r in rows]
    monkeypatch.setattr(DA, "exact_match", lambda m, t, pairs: hits)
    got = DA.task_accuracy(model, tok, rows)
    assert got == {"accuracy": 0.75, "part": 1.0, "preparation": 0.5, "ailment": 1.0, "place": 0.5}


def test_majority_accuracy_guesses_each_fields_most_common_answer():
    train = [{"field": "part", "answer": a} for a in ("root", "root", "leaf")]
    test = [{"field": "part", "answer": "root"}, {"field": "part", "answer": "leaf"},
            {"field": "ailment", "answer": "skelt"}]
    assert DA.majority_accuracy(train, test) == pytest.approx(1 / 3)
    rows = D.domain_task(WORLD, "test")
    assert 0 <= DA.majority_accuracy(D.domain_task(WORLD, "train"), rows) < 0.5


def test_differences_are_after_minus_before():
    assert DA.differences({"qa_recall": 1.0, "perplexity": 1.4, "x": 1}, {"qa_recall": 0.75, "perplexity": 2.0}) \
        == pytest.approx({"qa_recall": -0.25, "perplexity": 0.6})


def test_the_saved_adapted_model_reloads_with_its_tokenizer(tiny_v2, tmp_path):
    import labkit as lk

    model, tok = tiny_v2
    ext = DA.extend_tokenizer(tok, D.jargon())
    DA.resize_embeddings(model, tok, ext)
    folder = DA.save_adapted(model, ext, tmp_path / "adapted")
    texts = D.domain_text(WORLD)[:3] + ["Q : what does brinwort ease ? A : the skelt ."]
    check = DA.reload_check(model, ext, folder, texts)
    assert check == {"same_tokens": True, "vocab": len(ext), "max_logit_gap": pytest.approx(0, abs=1e-5)}
    loaded, tok2 = lk.load_model(str(folder))
    assert tok2.tokenize("of brinwort") == ["of", "brinwort"]
    assert DA.tied(loaded) and loaded.get_input_embeddings().weight.shape[0] == len(ext)


def test_round_trip_share_counts_texts_that_decode_back_exactly():
    tok = build_tokenizer(2)
    ext = DA.extend_tokenizer(tok, D.jargon())
    texts = D.domain_text(WORLD)[:10]
    assert DA.round_trip_share(ext, texts) == 1.0
    assert DA.round_trip_share(ext, texts[:3] + ["two  spaces", " a leading space"]) == pytest.approx(3 / 5)


def test_mean_row_and_general_words():
    rows = torch.tensor([[0.0, 2.0], [4.0, 6.0], [1.0, 1.0]])
    assert torch.equal(DA.mean_row(rows, [0, 1]), torch.tensor([2.0, 4.0]))
    assert torch.equal(DA.mean_row(rows, [2]), rows[2])
    assert DA.general_words(300, 0.25) == pytest.approx(100) and DA.general_words(300, 0.0) == 0
    assert DA.general_words(300, 0.5) == pytest.approx(300)  # half the mix: as much again


def test_mean_similarity_of_embedding_rows(tiny_v2):
    model, _ = tiny_v2
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[5], weight[6], weight[7] = torch.ones(weight.shape[1]), 2 * torch.ones(weight.shape[1]), 0
        weight[7, 0], weight[8] = 1.0, -torch.ones(weight.shape[1])
    assert DA.mean_similarity(model, [5, 6]) == pytest.approx(1.0)  # the same direction, any length
    assert DA.mean_similarity(model, [5, 8]) == pytest.approx(-1.0)
    n = weight.shape[1]
    assert DA.mean_similarity(model, [5, 6, 7]) == pytest.approx((1 + 2 / n ** 0.5) / 3, abs=1e-5)
    with pytest.raises(ValueError, match="two tokens"):
        DA.mean_similarity(model, [5])


def test_mean_init_starts_the_invented_herb_names_closer_together_than_random(tiny_v2):
    model, tok = tiny_v2
    ext = DA.extend_tokenizer(tok, D.jargon())
    herbs = [i for i, w in DA.new_token_ids(tok, ext).items() if w in D.HERBS]
    assert len(herbs) == len(D.HERBS)
    sims = {init: DA.mean_similarity(DA.resize_embeddings(copy.deepcopy(model), tok, ext, init=init), herbs)
            for init in DA.INITS}
    assert sims["mean"] > sims["random"] + 0.2  # shared syllables (-wort, brin-) give shared rows


def test_labelled_sizes_are_checked_and_include_every_question():
    assert DA.labelled_sizes((48, 16), 96) == [16, 48, 96]
    assert DA.labelled_sizes((96,), 96) == [96]
    for bad in ((0,), (16, 97)):
        with pytest.raises(ValueError, match="from 1 to 96"):
            DA.labelled_sizes(bad, 96)


def test_tune_and_score_tunes_on_the_first_questions_and_scores_seen_and_unseen(tiny_v2, tmp_path, monkeypatch):
    model, tok = tiny_v2
    train, unseen = D.domain_task(WORLD, "train"), D.domain_task(WORLD, "test")
    seen_counts = []
    monkeypatch.setattr(DA, "task_accuracy", lambda m, t, rows: (seen_counts.append(len(rows)) or
                                                                 {"accuracy": 0.5 if rows is unseen else 1.0}))
    rows = DA.tune_and_score(model, tok, train, unseen, [8, 4], out_dir=str(tmp_path), steps=1, batch_size=4,
                             progress=False)
    assert [r["n_train"] for r in rows] == [4, 8]
    assert seen_counts == [len(unseen), 4, len(unseen), 8]
    assert all(r["unseen"] == 0.5 and r["seen"] == 1.0 and r["seconds_per_step"] > 0 for r in rows)
    with pytest.raises(ValueError, match="not possible"):
        DA.tune_and_score(model, tok, train[:8], unseen, [9], out_dir=str(tmp_path), steps=1)


def test_gain_averages_the_arms_against_a_run_at_each_size():
    curves = {"a": [{"unseen": 0.5}, {"unseen": 0.7}], "b": [{"unseen": 0.1}, {"unseen": 0.3}],
              "base": [{"unseen": 0.1}, {"unseen": 0.2}]}
    assert DA.gain(curves, ["a", "b"], "base") == pytest.approx([0.2, 0.3])
    assert DA.gain(curves, ["a"], "b") == pytest.approx([0.4, 0.4])
    for arms, over in (([], "base"), (["c"], "base"), (["a"], "c")):
        with pytest.raises(ValueError, match="compares runs"):
            DA.gain(curves, arms, over)
