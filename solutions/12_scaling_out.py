# Solutions to the exercises of notebook 12 (the cells replace the notebook's exercise cells).

# %% 12.1
def zero_bytes_per_device(n_params, devices, stage):
    weights, gradients, optimizer = 2 * n_params, 2 * n_params, 12 * n_params
    if stage >= 1:
        optimizer /= devices
    if stage >= 2:
        gradients /= devices
    if stage >= 3:
        weights /= devices
    return weights + gradients + optimizer


# %% 12.2
gb_per_gpu = 16 * 70e9 / 8 / 1e9  # 140 GB
