# Solutions to the exercises of notebook 03 (the cells replace the notebook's exercise cells).

# %% 03.1
def lora_parameters(d_in, d_out, rank):
    return rank * d_in + d_out * rank  # A: rank x d_in, B: d_out x rank


# %% 03.2
def lora_forward(x, W, A, B, s):
    return x @ W.T + s * (x @ A.T) @ B.T
