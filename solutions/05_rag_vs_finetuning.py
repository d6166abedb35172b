# Solutions to the exercises of notebook 05 (the cells replace the notebook's exercise cells).

# %% 05.1
def recall_at_k(retrieved, gold, k):
    return sum(g in ranked[:k] for ranked, g in zip(retrieved, gold)) / len(gold)


# %% 05.2
def rag_prompt(passages, question):
    return " ".join([f"passage : {p}" for p in passages] + [question])  # the question reads "Q : ... A :"
