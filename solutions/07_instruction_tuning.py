# Solutions to the exercises of notebook 07 (the cells replace the notebook's exercise cells).

# %% 07.1
def assistant_only_labels(input_ids, assistant_mask):
    return [token if keep else -100 for token, keep in zip(input_ids, assistant_mask)]


# %% 07.2
def fact_precision_recall(written, told, wanted):
    precision = len(written & told) / len(written) if written else 1.0
    return precision, len(written & wanted) / len(wanted)
