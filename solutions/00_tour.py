# Solutions to the exercises of notebook 00 (the cells replace the notebook's exercise cells).
# Try the exercise first: the check cell in the notebook says right or wrong, with a hint.

# %% 00.1
def count_tokens(tokenizer, text):
    return len(tokenizer(text).input_ids)  # the ids include the <bos> the tokenizer puts in front


# %% 00.2
def exact_match(prediction, reference):
    return prediction.strip() == reference.strip()
