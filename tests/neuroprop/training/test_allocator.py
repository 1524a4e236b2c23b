"""keep_freed_memory: a conv net's training steps stop taking fresh pages from the kernel.

Each case runs in a fresh interpreter: the allocator's settings belong to the process.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

STEPS = """
import ctypes, json, resource, sys, torch
from neuroprop.network import Network
from neuroprop.network.spec import parse_network
from neuroprop.rules import make_rule, needs_feedback, rule_options_from_config
from neuroprop.training.allocator import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, keep_freed_memory

if "eager" in sys.argv[1]:  # glibc returning every block over 128 KiB to the kernel
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(M_MMAP_THRESHOLD, 2**17) and libc.mallopt(M_TRIM_THRESHOLD, 2**17)
applied = keep_freed_memory() if "keep" in sys.argv[1] else None
torch.manual_seed(0)
torch.set_num_threads(1)
layers = [{"type": "conv2d", "channels": 32, "kernel": 3, "stride": 1, "padding": 1},
          {"type": "batchnorm"},
          {"type": "conv2d", "channels": 32, "kernel": 3, "stride": 2, "padding": 1},
          {"type": "batchnorm"}, {"type": "dense", "units": 100}, {"type": "output"}]
spec = parse_network({"layers": layers}, (1, 28, 28), 10)
options = rule_options_from_config("brainprop")
net, rule = Network(spec, needs_feedback(options)), make_rule(options)
x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
windows = []
for _ in range(4):  # the quietest of 4 windows of 5 steps: the heap's growth left out
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        rule.step(net, x, y)
    windows.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
print(json.dumps({"faults": min(windows), "applied": applied}))
"""
"""Prints the page faults per step (the quietest window) as JSON."""


def _faults_per_step(mode: str, env: dict[str, str] | None = None) -> tuple[float, bool]:
    """Page faults per BrainProp step of a small MNIST-shaped conv net, and what
    ``keep_freed_memory`` returned (None: not called). ``mode``: "keep" calls it,
    "eager" first sets glibc to return every block over 128 KiB, "eager+keep" both;
    ``env`` adds to the environment."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    environment.update(env or {})
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True,
                         text=True, env=environment, check=True).stdout
    result = json.loads(out.splitlines()[-1])
    return result["faults"], result["applied"]


needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                 reason="the allocator setting is glibc's; this C library "
                                        "is not glibc")


@needs_glibc
def test_conv_steps_reuse_freed_memory_instead_of_fresh_pages():
    # glibc set to give memory back eagerly: one 128 x 32 x 28 x 28 float32 map is 3,136
    # pages of 4 KiB, taken afresh every step (measured 44,700 faults a step)
    eager, _ = _faults_per_step("eager")
    assert eager > 3000, eager
    kept, applied = _faults_per_step("eager+keep")
    assert applied is True
    assert kept < 100, (kept, eager)
    # glibc as it starts (measured 600-15,600 faults a step, depending on its history)
    kept_from_start, applied = _faults_per_step("keep")
    assert applied is True
    assert kept_from_start < 100, kept_from_start


@needs_glibc
def test_the_users_own_allocator_settings_are_left_alone():
    faults, applied = _faults_per_step("keep", {"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert applied is False
    assert faults > 3000, faults
