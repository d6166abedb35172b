import torch

from labkit import memory


def test_full_finetuning_bill_is_16_bytes_per_fp32_param():
    model = torch.nn.Linear(10, 10)
    bill = memory.full_finetuning_bytes(model)
    assert bill["total"] == 16 * 110 and bill["optimizer"] == 8 * 110


def test_peak_sees_an_allocation():
    memory.reset_peak()
    before = memory.peak_bytes()
    block = torch.ones(64 * 2**20 // 4)  # 64 MB
    assert memory.peak_bytes() >= before + 48 * 2**20
    del block
