#!/usr/bin/python3
"""torch_gpt.py: the PyTorch anchor of bench/compute.

The same GPT as arceus-worker (pre-LayerNorm blocks, causal attention,
4x GELU (erf) MLP, tied LM head, byte vocabulary), the same initialisation
scheme, AdamW with decay on matrices only, warmup + cosine schedule,
global-norm clipping, random training windows and fixed validation
windows.  Prints one JSON line: median ms per step and the final
validation loss.

usage: torch_gpt.py --data FILE --layers L --heads H --embd C --block T
                    --batch B --steps S --threads N [--eval-iters K]
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Debian 12's torch 1.13 has no fused attention: the explicit T x T form
SDPA = hasattr(F, "scaled_dot_product_attention")


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.fcproj = nn.Linear(4 * C, C)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, self.H, C // self.H).transpose(1, 2)
        k = k.view(B, T, self.H, C // self.H).transpose(1, 2)
        v = v.view(B, T, self.H, C // self.H).transpose(1, 2)
        if SDPA:
            # PyTorch >= 2.0: its fused causal attention, the fastest it has
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(mask[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.proj(y)
        x = x + self.fcproj(F.gelu(self.fc(self.ln2(x))))
        return x


class GPT(nn.Module):
    def __init__(self, L, H, C, T, V=256):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList([Block(C, H) for _ in range(L)])
        self.lnf = nn.LayerNorm(C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T)).view(1, 1, T, T))
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02
                if name.endswith("proj.weight"):
                    std = 0.02 / math.sqrt(2 * L)
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.mask)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    if step >= a.steps:
        return a.min_lr
    r = (step - a.warmup) / (a.steps - a.warmup)
    return a.min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (a.lr - a.min_lr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--embd", type=int, required=True)
    p.add_argument("--block", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", dest="min_lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--eval-iters", dest="eval_iters", type=int, default=20)
    p.add_argument("--val-fraction", dest="val_fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1337)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    raw = open(a.data, "rb").read()
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
    ntrain = int(len(data) * (1 - a.val_fraction))
    train, val = data[:ntrain], data[ntrain:]
    B, T = a.batch, a.block

    model = GPT(a.layers, a.heads, a.embd, T)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    times = []
    for step in range(a.steps):
        t0 = time.perf_counter()
        ix = torch.randint(len(train) - T, (B,))
        x = torch.stack([train[i:i + T] for i in ix])
        y = torch.stack([train[i + 1:i + 1 + T] for i in ix])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append((time.perf_counter() - t0) * 1e3)
    model.eval()
    with torch.no_grad():
        windows = (len(val) - 1) // T
        tot = 0.0
        for i in range(a.eval_iters):
            w = [((i * B + b) % windows) * T for b in range(B)]
            x = torch.stack([val[o:o + T] for o in w])
            y = torch.stack([val[o + 1:o + 1 + T] for o in w])
            tot += model(x, y).item()
    skip = min(3, len(times) - 1)
    print(json.dumps({"ms_per_step": statistics.median(times[skip:]),
                      "val_loss": tot / a.eval_iters,
                      "final_loss": loss.item()}))


if __name__ == "__main__":
    sys.exit(main())
