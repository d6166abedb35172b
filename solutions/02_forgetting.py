# Solutions to the exercises of notebook 02 (the cells replace the notebook's exercise cells).

# %% 02.1
def fell_steadily(values, tolerance):
    return all(later <= earlier + tolerance for earlier, later in zip(values, values[1:]))


# %% 02.2
def mix_replay(new, old, fraction):
    n_old = int(fraction * len(new))
    return new[n_old:] + old[:n_old]  # same length: the same step budget
