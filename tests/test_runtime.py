"""Thread counts and the OpenMP wait policy: decided from the environment, the cores and the runs sharing them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from magig_core import runtime
from magig_core.cli import main


def test_cores_are_shared_equally_among_concurrent_runs() -> None:
    assert runtime.plan_threads(cores=8, environ={}).threads == 8
    assert runtime.plan_threads(cores=8, concurrent_runs=2, environ={}).threads == 4
    assert runtime.plan_threads(cores=2, concurrent_runs=3, environ={}).threads == 1  # never below one
    plan = runtime.plan_threads(cores=4, environ={runtime.RUNS_ENV: "2"})
    assert (plan.threads, plan.concurrent_runs, plan.source) == (2, 2, "cores // runs")


def test_torchrun_processes_on_one_machine_count_as_concurrent_runs() -> None:
    assert runtime.plan_threads(cores=16, environ={"LOCAL_WORLD_SIZE": "4"}).threads == 4
    assert runtime.plan_threads(cores=16, environ={"LOCAL_WORLD_SIZE": "4", runtime.RUNS_ENV: "2"}).threads == 8


def test_explicit_choices_win_in_order_caller_then_magig_threads_then_omp_num_threads() -> None:
    env = {runtime.THREADS_ENV: "3", "OMP_NUM_THREADS": "5"}
    assert runtime.plan_threads(threads=7, cores=2, environ=env).source == "caller"
    assert runtime.plan_threads(cores=2, environ=env).threads == 3
    assert runtime.plan_threads(cores=2, environ={"OMP_NUM_THREADS": "5"}).threads == 5
    # Nonsense values are ignored rather than fatal.
    assert runtime.plan_threads(cores=2, environ={runtime.THREADS_ENV: "many", "OMP_NUM_THREADS": "0"}).threads == 2


def test_a_container_cpu_quota_caps_the_visible_cores(tmp_path, monkeypatch) -> None:
    limit = tmp_path / "cpu.max"
    limit.write_text("200000 100000\n")
    assert runtime.cgroup_cpu_limit(v2=limit) == 2.0
    limit.write_text("max 100000\n")
    assert runtime.cgroup_cpu_limit(v2=limit) is None
    quota, period = tmp_path / "quota", tmp_path / "period"
    quota.write_text("150000\n")
    period.write_text("100000\n")
    assert runtime.cgroup_cpu_limit(v2=tmp_path / "missing", v1_quota=quota, v1_period=period) == 1.5
    monkeypatch.setattr(runtime, "cgroup_cpu_limit", lambda: 1.5)
    assert runtime.available_cores() == 1


def test_passive_wait_is_a_default_the_user_can_override() -> None:
    env: dict[str, str] = {}
    assert runtime.prefer_passive_wait(env) is False  # torch is imported in this process: too late here
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    runtime.prefer_passive_wait(env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"


SPIN_COUNTS = {"PASSIVE": "0", "ACTIVE": "30000000000"}  # libgomp's spin count under each policy


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_the_package_sets_the_policy_before_torch_loads(given, expected) -> None:
    """OpenMP's own report of the policy it runs with (``OMP_DISPLAY_ENV``, printed when it loads with torch).

    Catches a package that sets the variable after torch has loaded: the variable then reads PASSIVE while
    OpenMP keeps spinning (spin count 300000); and one that overrides a policy the user chose.
    """
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | {"OMP_DISPLAY_ENV": "VERBOSE"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", "import magig_core"], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    report = dict(line.strip().replace("'", "").split(" = ", 1) for line in out.stderr.splitlines() if " = " in line)
    if "GOMP_SPINCOUNT" not in report:
        pytest.skip("torch's OpenMP runtime here is not libgomp, which reports its spin count")
    assert (report["OMP_WAIT_POLICY"], report["GOMP_SPINCOUNT"]) == (expected, SPIN_COUNTS[expected])


def test_configure_threads_applies_the_plan_process_wide(monkeypatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setattr(runtime, "_configured", runtime._configured)  # restored afterwards
    try:
        monkeypatch.setenv(runtime.THREADS_ENV, "1")
        assert runtime.configure_threads().threads == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_cli_takes_a_threads_flag(tmp_path) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["benchmark", "--tiny", "--size", "16", "--steps", "3", "--batch", "1", "--repeats", "1",
                     "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


PASSIVE_ENV = {runtime.WAIT_POLICY_ENV: runtime.PASSIVE}


def test_small_images_get_fewer_threads_unless_someone_chose_a_number() -> None:
    """Catches a plan that gives every run all the cores: on 2 cores the bundled pair at 64 px ran 1.4x
    faster on one thread (benchmarks/README.md), and a fitted plan must never exceed the cores' share."""
    plan = runtime.plan_threads(cores=8, environ=PASSIVE_ENV)
    assert plan.for_work(64 * 64).threads == 1
    assert plan.for_work(128 * 128).threads == 4
    assert plan.for_work(10 * 64 * 64).threads == 8  # a batch of ten 64 px images shares each pass
    assert plan.for_work(256 * 256).threads == 8  # never more than the cores' share
    assert plan.for_work(256 * 256).source == runtime.AUTOMATIC
    assert "at most one per" in plan.for_work(64 * 64).source
    shared = runtime.plan_threads(cores=8, concurrent_runs=2, environ=PASSIVE_ENV)
    assert shared.for_work(256 * 256).threads == 4
    chosen = runtime.plan_threads(cores=8, environ={runtime.THREADS_ENV: "6", **PASSIVE_ENV})
    assert chosen.for_work(64 * 64).threads == 6
    assert runtime.plan_threads(threads=3, cores=8, environ=PASSIVE_ENV).for_work(16).threads == 3


def test_spinning_threads_keep_all_cores_for_small_images() -> None:
    """Catches the size rule applied where its reason is absent: spinning threads pay no wake-up per layer,
    and two of them were faster than one at 64 px on an idle machine (1.18 s against 1.77 s)."""
    for policy in ({}, {runtime.WAIT_POLICY_ENV: "ACTIVE"}):
        assert runtime.plan_threads(cores=2, environ=policy).for_work(64 * 64).threads == 2
    assert runtime.plan_threads(cores=2, environ={runtime.WAIT_POLICY_ENV: "passive"}).for_work(64 * 64).threads == 1


def test_the_policy_in_effect_is_what_openmp_read_when_torch_loaded(monkeypatch) -> None:
    """Catches a plan that trusts the environment after the fact: once torch is loaded, setting PASSIVE
    changes nothing, so the plan must keep the policy OpenMP actually read."""
    monkeypatch.setattr(runtime, "_policy_in_effect", runtime._policy_in_effect)
    monkeypatch.delenv(runtime.WAIT_POLICY_ENV, raising=False)
    for chosen_by_user in (runtime.THREADS_ENV, runtime.RUNS_ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(chosen_by_user, raising=False)
    assert runtime.prefer_passive_wait() is False  # torch is loaded in this process
    assert os.environ[runtime.WAIT_POLICY_ENV] == runtime.PASSIVE
    assert runtime.plan_threads(cores=2).wait_policy == runtime.OPENMP_DEFAULT
    assert runtime.plan_threads(cores=2).for_work(64 * 64).threads == 2


def test_threads_for_work_leaves_a_users_own_setting_alone(monkeypatch) -> None:
    """Catches the library changing torch's threads in a script that never asked it to."""
    before = torch.get_num_threads()
    monkeypatch.setattr(runtime, "_configured", None)
    assert runtime.threads_for_work(64 * 64) is None
    assert torch.get_num_threads() == before
    monkeypatch.setattr(runtime, "_configured", runtime.plan_threads(cores=2, environ=PASSIVE_ENV))
    try:
        assert runtime.threads_for_work(64 * 64).threads == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
