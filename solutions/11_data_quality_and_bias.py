# Solutions to the exercises of notebook 11 (the cells replace the notebook's exercise cells).

# %% 11.1
def she_rate(pronouns, sectors):
    learned = [p for p, s in zip(pronouns, sectors) if s == "learned"]
    return sum(p == "she" for p in learned) / len(learned) if learned else 0.0


# %% 11.2
def augment(examples):
    return [dict(example, pronoun=p) for example in examples for p in ("he", "she", "they")]
