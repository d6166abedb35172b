# Solutions to the exercises of notebook 04 (the cells replace the notebook's exercise cells).

# %% 04.1
def bits_per_parameter(double_quant, blocksize=64):
    if double_quant:  # the absmax in 8 bits, plus one fp32 constant per 256 blocks
        return 4 + 8 / blocksize + 32 / (blocksize * 256)
    return 4 + 32 / blocksize  # one fp32 absmax per block


# %% 04.2
fits_t4 = {"lora", "qlora"}
