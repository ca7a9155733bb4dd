"""The server's allocator setting: glibc takes it, and it changes no arithmetic."""

from __future__ import annotations

import sys

import pytest
import torch

from fedmobile_actors.runtime.allocator import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_takes_the_setting_and_the_bits_stay() -> None:
    torch.manual_seed(0)
    x, w = torch.randn(512, 8, 3, 200), torch.randn(16, 8, 3, 3)
    before = torch.nn.functional.conv2d(x, w)
    assert keep_freed_memory()
    after = torch.nn.functional.conv2d(x, w)
    assert torch.equal(before, after)
