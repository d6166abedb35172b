# Solutions to the exercises of notebook 06 (the cells replace the notebook's exercise cells).

# %% 06.1
def trainable_share(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable / sum(p.numel() for p in model.parameters())


# %% 06.2
def pareto_front(points):
    def beaten(n, a):
        return any(n2 <= n and a2 >= a and (n2 < n or a2 > a) for n2, a2 in points.values())

    return sorted((m for m, (n, a) in points.items() if not beaten(n, a)), key=lambda m: points[m][0])
