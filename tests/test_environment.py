"""The environment recorded with every run: the machine and the versions that shape the digits."""
from __future__ import annotations

import importlib.metadata

from upft_bench.environment import cpu_model, describe, summary


def test_describe_names_the_machine_and_the_versions():
    env = describe()
    assert env["cpu"] == cpu_model() and env["cpu"]
    assert env["cpu_capability"] in ("DEFAULT", "NO AVX", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256")
    assert set(env["cpu_features"]) <= {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile",
                                        "amx_int8"}
    assert env["versions"]["transformers"] == importlib.metadata.version("transformers")
    assert env["versions"]["lm_eval"] == importlib.metadata.version("lm-eval")


def test_summary_is_one_line_and_says_when_nothing_was_recorded():
    versions = {"torch": "2.13.0", "transformers": "5.24.0", "accelerate": "1.16.0", "lm_eval": "0.4.13",
                "numpy": "2.4.6"}
    env = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "cpu_features": ["avx512_bf16",
           "amx_bf16"], "gpu": None, "versions": versions}
    assert summary(env) == ("Intel(R) Xeon(R) Processor (torch CPU kernels AVX512; avx512_bf16, amx_bf16), "
                            "torch 2.13.0, transformers 5.24.0, accelerate 1.16.0, lm-eval 0.4.13")
    assert summary({**env, "gpu": "NVIDIA H200"}).startswith("NVIDIA H200, torch 2.13.0")
    assert summary(None) == "environment not recorded"
