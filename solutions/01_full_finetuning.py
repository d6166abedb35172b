# Solutions to the exercises of notebook 01 (the cells replace the notebook's exercise cells).

# %% 01.1
def adamw_bytes(n_params):
    weights, gradients, adam_moments = 4, 4, 2 * 4  # fp32: 4 bytes each
    return n_params * (weights + gradients + adam_moments)


# %% 01.2
def make_example(prompt_ids, completion_ids):
    input_ids = prompt_ids + completion_ids
    labels = [-100] * len(prompt_ids) + completion_ids  # the loss ignores -100: only the completion is learned
    return {"input_ids": input_ids, "labels": labels}
