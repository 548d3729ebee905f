"""Shared test settings: the CI machine has 2 cores, so tests run torch single-threaded."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
