# Solutions to the exercises of notebook 08 (the cells replace the notebook's exercise cells).

# %% 08.1
def bradley_terry_loss(chosen, rejected):
    import math

    margin = chosen - rejected
    return math.log1p(math.exp(-margin)) if margin > -30 else -margin


# %% 08.2
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    import math

    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return math.log1p(math.exp(-margin)) if margin > -30 else -margin
