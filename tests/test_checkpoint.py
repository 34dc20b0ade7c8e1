"""Tests of dlhelpers.checkpoint: round trips, resuming, refusing broken, foreign or malicious
files, atomic writes, and runs killed with SIGKILL.

Oracles: the model's own state before saving (a round trip must give it back exactly); an
uninterrupted run (a resumed or killed-and-resumed run must end with exactly its weights and
history); a payload that really runs code when unpickled (the loaders must refuse it).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import pickle
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _models import (  # tests/_models.py
    BACKENDS,
    Y_VAL,
    assert_same_weights,
    numpy_model,
    one_torch_thread,  # noqa: F401 (an autouse fixture)
    quiet_fit,
    torch_model,
    weights,
)

from dlhelpers import nn, optim
from dlhelpers.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from dlhelpers.train import EarlyStopping


def test_the_checkpoint_names_stay_importable_from_dlhelpers_train():
    import dlhelpers.checkpoint
    import dlhelpers.train

    for name in ("CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "load_checkpoint", "save_checkpoint"):
        assert getattr(dlhelpers.train, name) is getattr(dlhelpers.checkpoint, name)
    with pytest.raises(AttributeError, match="has no attribute 'save'"):
        dlhelpers.train.save  # noqa: B018


# ---------------------------------------------------------------------------------------------
# Checkpoints: round trip
# ---------------------------------------------------------------------------------------------


def _schedule(backend, optimizer):
    if backend == "torch":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return optim.StepLR(optimizer, step_size=2, gamma=0.5)


def _assert_same_state(a, b):
    """Equal nested states (dicts, lists, arrays, tensors, numbers), exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_state(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoint_round_trip(backend, tmp_path):
    make = BACKENDS[backend]
    model, optimizer, loss = make(dropout=0.2)
    scheduler, stopper = _schedule(backend, optimizer), EarlyStopping(patience=50)
    history = quiet_fit(model, optimizer, loss, epochs=3, scheduler=scheduler,
                        early_stopping=stopper)
    extra_array = torch.arange(3) if backend == "torch" else np.arange(3)
    path = save_checkpoint(tmp_path / "ckpt", model, optimizer, epoch=3, history=history,
                           scheduler=scheduler, early_stopping=stopper, note="hi",
                           values=[1, 2.5, None], array=extra_array)
    assert path == tmp_path / "ckpt" and path.is_file()
    assert os.listdir(tmp_path) == ["ckpt"]  # no temporary file left

    fresh, fresh_optimizer, _ = make(seed=9, dropout=0.2)
    fresh_scheduler, fresh_stopper = _schedule(backend, fresh_optimizer), EarlyStopping(50)
    loaded = load_checkpoint(path, fresh, fresh_optimizer, scheduler=fresh_scheduler,
                             early_stopping=fresh_stopper)
    assert loaded["epoch"] == 3
    assert loaded["history"] == history
    assert loaded["extra"]["note"] == "hi" and loaded["extra"]["values"] == [1, 2.5, None]
    _assert_same_state(loaded["extra"]["array"], extra_array)
    assert_same_weights(weights(fresh), weights(model))
    _assert_same_state(fresh_optimizer.state_dict(), optimizer.state_dict())
    _assert_same_state(fresh_scheduler.state_dict(), scheduler.state_dict())
    _assert_same_state(fresh_stopper.state_dict(), stopper.state_dict())


def test_numpy_checkpoints_are_npz_with_flat_keys_and_no_pickle(tmp_path):
    model, optimizer, _ = numpy_model()
    path = save_checkpoint(tmp_path / "ckpt.npz", model, optimizer, epoch=1)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        np.testing.assert_array_equal(archive["model/0.weight"], model.state_dict()["0.weight"])
    assert {"meta", "model/0.weight", "model/2.bias", "optimizer/exp_avg.0"} <= names


def test_load_checkpoint_can_skip_the_random_state(tmp_path):
    model, optimizer, _ = numpy_model(dropout=0.5)
    path = save_checkpoint(tmp_path / "c.npz", model, optimizer)
    dropout_rng = model[2].rng
    before = dropout_rng.bit_generator.state
    dropout_rng.random(10)  # move the generator on
    load_checkpoint(path, model, restore_rng=False)
    assert dropout_rng.bit_generator.state != before
    load_checkpoint(path, model)
    assert dropout_rng.bit_generator.state == before


# ---------------------------------------------------------------------------------------------
# Resuming gives exactly the uninterrupted run
# ---------------------------------------------------------------------------------------------


def _run(backend, path, epochs, *, resume, y_val=Y_VAL, patience=50, restore_rng=True):
    """Train a dropout net with Adam, a schedule and early stopping; optionally resume.

    A resumed run starts like a restarted program: other initial weights, another random state
    (torch's generator seeded with 9, a new numpy Dropout generator); the checkpoint must
    restore all of it.
    """
    model, optimizer, loss = BACKENDS[backend](seed=9 if resume else 0, dropout=0.3)
    scheduler, stopper = _schedule(backend, optimizer), EarlyStopping(patience)
    start, history, rng = 0, None, 0
    if resume:
        saved = load_checkpoint(path, model, optimizer, scheduler=scheduler,
                                early_stopping=stopper, restore_rng=restore_rng)
        start, history, rng = saved["epoch"], saved["history"], saved["extra"]["seed"]
    history = quiet_fit(model, optimizer, loss, y_val=y_val, epochs=epochs, rng=rng,
                        scheduler=scheduler, early_stopping=stopper, checkpoint_path=path,
                        history=history, start_epoch=start)
    return weights(model), history


@pytest.mark.parametrize("backend", BACKENDS)
def test_resuming_gives_exactly_the_uninterrupted_run(backend, tmp_path):
    expected_weights, expected_history = _run(backend, tmp_path / "a", 8, resume=False)
    _run(backend, tmp_path / "b", 3, resume=False)  # "interrupted" after epoch 3
    assert load_checkpoint(tmp_path / "b", BACKENDS[backend](dropout=0.3)[0])["epoch"] == 3
    resumed_weights, resumed_history = _run(backend, tmp_path / "b", 8, resume=True)
    assert_same_weights(resumed_weights, expected_weights)
    assert resumed_history == expected_history
    # Control: without the saved random state the dropout masks differ, and so do the weights.
    _run(backend, tmp_path / "c", 3, resume=False)
    other_weights, _ = _run(backend, tmp_path / "c", 8, resume=True, restore_rng=False)
    assert not np.array_equal(other_weights["0.weight"], expected_weights["0.weight"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_resuming_after_early_stopping_fired_restores_the_best_weights(backend, tmp_path):
    flipped = 1 - Y_VAL
    expected, expected_history = _run(backend, tmp_path / "a", 30, resume=False,
                                      y_val=flipped, patience=2)
    stopped = expected_history.epochs[-1]
    assert stopped < 30
    _run(backend, tmp_path / "b", stopped, resume=False, y_val=flipped, patience=2)
    resumed, resumed_history = _run(backend, tmp_path / "b", 30, resume=True, y_val=flipped,
                                    patience=2)
    assert resumed_history == expected_history  # no further epoch was trained
    assert_same_weights(resumed, expected)


# ---------------------------------------------------------------------------------------------
# Checkpoints: bad files are refused with clear errors
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=list(BACKENDS))
def saved(request, tmp_path):
    """(backend, path of a valid checkpoint, a fresh model and optimizer to load into)."""
    backend = request.param
    model, optimizer, _ = BACKENDS[backend]()
    path = save_checkpoint(tmp_path / "ckpt", model, optimizer, epoch=2)
    fresh, fresh_optimizer, _ = BACKENDS[backend](seed=4)
    return backend, path, fresh, fresh_optimizer


def test_missing_file_raises_file_not_found_with_the_path(saved, tmp_path):
    _, _, model, _ = saved
    missing = tmp_path / "nothing-here.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_checkpoint(missing, model)


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.95])
def test_truncated_file_is_refused(saved, keep):
    _, path, model, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    before = weights(model)
    with pytest.raises(ValueError, match="not a complete zip archive.*truncated"):
        load_checkpoint(path, model)
    assert_same_weights(weights(model), before)


def test_random_bytes_are_refused(saved):
    _, path, model, _ = saved
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="not a dlhelpers checkpoint"):
        load_checkpoint(path, model)


def test_a_flipped_byte_inside_the_weights_is_detected(saved):
    backend, path, model, _ = saved
    data = bytearray(path.read_bytes())
    raw = weights(BACKENDS[backend]()[0])["0.weight"]  # the saved model's first weights
    start = bytes(data).find(np.ascontiguousarray(raw).tobytes())
    assert start > 0, "the weights' bytes should be stored verbatim"
    data[start + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(path, model)


class _Payload:
    """Unpickling this object creates a directory: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_the_malicious_payload_really_runs_code_when_unpickled(tmp_path):
    # Control for the next two tests: plain pickle would run it.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.is_dir()


def test_torch_checkpoints_are_loaded_with_weights_only(tmp_path):
    model, _, _ = torch_model()
    marker, path = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="refused.*weights_only=True"):
        load_checkpoint(path, model)
    assert not marker.exists()
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="not a dlhelpers checkpoint"):
        load_checkpoint(plain, model)
    assert not marker.exists()


def test_numpy_checkpoints_are_loaded_without_pickle(tmp_path):
    model, _, _ = numpy_model()
    marker, path = tmp_path / "ran", tmp_path / "evil.npz"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    np.savez(path, meta=np.frombuffer(b"{}", dtype=np.uint8), evil=payload)
    with pytest.raises(ValueError, match="corrupted.*allow_pickle"):
        load_checkpoint(path, model)
    assert not marker.exists()


def test_foreign_archives_are_refused(tmp_path):
    torch_net, _, _ = torch_model()
    numpy_net, _, _ = numpy_model()
    bare = tmp_path / "state.pt"
    torch.save(torch_net.state_dict(), bare)  # a torch file, but not a checkpoint
    with pytest.raises(ValueError, match="not a dlhelpers checkpoint"):
        load_checkpoint(bare, torch_net)
    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, w=np.zeros(3))
    with pytest.raises(ValueError, match="zip archive but not a dlhelpers checkpoint"):
        load_checkpoint(arrays, numpy_net)
    future = tmp_path / "future.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 99}, future)
    with pytest.raises(ValueError, match="format version 99.*reads version 1"):
        load_checkpoint(future, torch_net)


def test_checkpoint_of_the_other_backend_is_refused(tmp_path):
    torch_net, _, _ = torch_model()
    numpy_net, _, _ = numpy_model()
    torch_file = save_checkpoint(tmp_path / "t", torch_net)
    numpy_file = save_checkpoint(tmp_path / "n", numpy_net)
    with pytest.raises(ValueError, match="checkpoint of a torch model.*numpy"):
        load_checkpoint(torch_file, numpy_net)
    with pytest.raises(ValueError, match=r"checkpoint of a numpy \(dlhelpers.nn\) model.*torch"):
        load_checkpoint(numpy_file, torch_net)


def test_checkpoint_of_another_architecture_is_refused_and_changes_nothing(saved):
    backend, path, _, _ = saved
    other, other_optimizer, _ = BACKENDS[backend](hidden=8)
    before = weights(other)
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(path, other, other_optimizer)
    assert_same_weights(weights(other), before)


def test_a_failing_part_rolls_back_the_parts_already_loaded(tmp_path):
    # The model fits, the optimizer does not (SGD state into Adam): the model must not change.
    model, _, _ = numpy_model()
    path = save_checkpoint(tmp_path / "c.npz", model, optim.SGD(model.parameters(), lr=0.1))
    fresh, fresh_adam, _ = numpy_model(seed=4)
    before = weights(fresh)
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(path, fresh, fresh_adam)
    assert_same_weights(weights(fresh), before)


def test_a_random_state_that_does_not_fit_rolls_back_the_generators_already_set(tmp_path):
    # Two Dropout layers; the checkpoint's state of the second is not a PCG64 state (as if
    # corrupted), so restoring it fails after the first generator was already set.
    def two_dropouts(seed):
        return nn.Sequential(nn.Dense(2, 4, rng=seed), nn.Dropout(0.5, rng=seed + 1),
                             nn.Dense(4, 2, rng=seed + 2), nn.Dropout(0.5, rng=seed + 3))

    saved_model = two_dropouts(0)
    saved_model[3].rng = np.random.Generator(np.random.MT19937(0))
    path = save_checkpoint(tmp_path / "c.npz", saved_model)
    model = two_dropouts(10)
    before = weights(model)
    first, second = (model[i].rng.bit_generator.state for i in (1, 3))
    assert first != saved_model[1].rng.bit_generator.state  # a load would change it
    with pytest.raises(ValueError, match="does not fit.*PCG64"):
        load_checkpoint(path, model)
    assert model[1].rng.bit_generator.state == first
    assert model[3].rng.bit_generator.state == second
    assert_same_weights(weights(model), before)


def test_asking_for_a_part_the_checkpoint_lacks_is_an_error(tmp_path):
    model, optimizer, _ = numpy_model()
    path = save_checkpoint(tmp_path / "c.npz", model)
    with pytest.raises(ValueError, match="has no optimizer state"):
        load_checkpoint(path, model, optimizer)


# ---------------------------------------------------------------------------------------------
# Checkpoints: writing
# ---------------------------------------------------------------------------------------------


def test_save_checkpoint_rejects_bad_arguments(tmp_path):
    model, _, _ = numpy_model()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "missing" / "c.npz", model)
    with pytest.raises(TypeError, match=r"extra\['thing'\]"):
        save_checkpoint(tmp_path / "c.npz", model, thing=object())
    with pytest.raises(TypeError, match="path"):
        save_checkpoint(3, model)
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint(tmp_path / "c.npz", model, epoch=-1)
    with pytest.raises(TypeError, match="history"):
        save_checkpoint(tmp_path / "c.npz", model, history=[1.0])
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_refuses_an_optimizer_of_the_other_backend(tmp_path):
    # Before the check, a torch model with a dlhelpers optimizer was saved, and loading the
    # file failed with "holds objects that only arbitrary code could rebuild".
    torch_net, torch_opt, _ = torch_model()
    numpy_net, numpy_opt, _ = numpy_model()
    with pytest.raises(TypeError, match="optimizer must be a torch.optim optimizer for a "
                                        "torch model, got SGD"):
        save_checkpoint(tmp_path / "t", torch_net, optim.SGD(numpy_net.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="optimizer must be a dlhelpers.optim optimizer .*"
                                        "for a numpy model, got Adam"):
        save_checkpoint(tmp_path / "n", numpy_net, torch_opt)
    with pytest.raises(ValueError, match="optimizer must update the model's parameters"):
        save_checkpoint(tmp_path / "n", numpy_net, numpy_model(seed=3)[1])
    assert list(tmp_path.iterdir()) == []
    # load_checkpoint applies the same check before reading the file.
    path = save_checkpoint(tmp_path / "n", numpy_net, numpy_opt)
    with pytest.raises(TypeError, match="optimizer must be a dlhelpers.optim optimizer"):
        load_checkpoint(path, numpy_net, torch_opt)


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o027])
@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoints_get_the_mode_of_a_normally_created_file(backend, umask, tmp_path):
    # NamedTemporaryFile creates 0600 files; a checkpoint must follow the umask like any file.
    model = BACKENDS[backend]()[0]
    old = os.umask(umask)
    try:
        normal = tmp_path / "normal"
        normal.write_bytes(b"")
        path = save_checkpoint(tmp_path / "ckpt", model)
        path = save_checkpoint(path, model)  # replacing an existing checkpoint, too
    finally:
        os.umask(old)
    assert stat.S_IMODE(normal.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(normal.stat().st_mode)


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    model, _, _ = numpy_model()
    path = save_checkpoint(tmp_path / "c.npz", model, epoch=1)

    def fail_halfway(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert load_checkpoint(path, model)["epoch"] == 1
    assert os.listdir(tmp_path) == ["c.npz"]


def test_leftover_temporary_files_of_a_crash_are_removed(tmp_path):
    model, _, _ = numpy_model()
    leftover = tmp_path / ".c.npz.k2j4h5g6.tmp"
    leftover.write_bytes(b"half")
    unrelated = tmp_path / ".other.npz.k2j4h5g6.tmp"
    unrelated.write_bytes(b"someone else's")
    save_checkpoint(tmp_path / "c.npz", model)
    assert sorted(os.listdir(tmp_path)) == [".other.npz.k2j4h5g6.tmp", "c.npz"]


# ---------------------------------------------------------------------------------------------
# The kill test: SIGKILL at random moments never leaves a broken checkpoint
# ---------------------------------------------------------------------------------------------

HELPER = Path(__file__).with_name("_resumable_training.py")
KILL_EPOCHS = 60
KILL_TRIALS = 12


def _load_helper():
    spec = importlib.util.spec_from_file_location("_resumable_training", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs fork() to start the killed runs quickly")
def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_result(tmp_path):
    helper = _load_helper()
    started = time.perf_counter()
    reference_model, reference = helper.train(tmp_path / "reference.npz", KILL_EPOCHS)
    run_time = time.perf_counter() - started  # scales the delays to this machine's speed

    checkpoint = tmp_path / "run" / "ckpt.npz"
    checkpoint.parent.mkdir()
    temporary = re.compile(r"\.ckpt\.npz\.[a-z0-9_]+\.tmp")
    # Seeded kill moments, counted from the start of training (after loading the checkpoint);
    # together about 40% of one whole run, so the runs are killed long before the end.
    delays = np.random.default_rng(2024).uniform(0.1, 0.7, size=KILL_TRIALS) * run_time
    delays /= KILL_TRIALS
    context = multiprocessing.get_context("fork")  # starts at once, no torch import per run
    last_epoch, killed, seen_temporaries = 0, 0, set()
    for delay in delays:
        training = context.Event()
        run = context.Process(target=helper.train, args=(checkpoint, KILL_EPOCHS, training.set))
        run.start()
        assert training.wait(timeout=60), "the run did not start training"
        time.sleep(delay)
        run.kill()  # SIGKILL: no clean-up code runs
        run.join()
        assert run.exitcode in (-signal.SIGKILL, 0), f"the run failed: exit code {run.exitcode}"
        killed += run.exitcode == -signal.SIGKILL
        names = set(os.listdir(checkpoint.parent))
        # Only the checkpoint and temporary files; a temporary never takes the checkpoint name.
        assert all(name == "ckpt.npz" or temporary.fullmatch(name) for name in names), names
        seen_temporaries |= names - {"ckpt.npz"}
        if not checkpoint.exists():
            continue  # killed before the first epoch ended
        _, model, optimizer, scheduler, stopper = helper.build()
        saved = load_checkpoint(checkpoint, model, optimizer, scheduler=scheduler,
                                early_stopping=stopper)  # never corrupt
        epoch = saved["epoch"]
        assert last_epoch <= epoch <= KILL_EPOCHS
        # The checkpoint is the uninterrupted run's state at that epoch.
        assert saved["history"].train_loss == reference.train_loss[:epoch]
        assert saved["history"].val_loss == reference.val_loss[:epoch]
        last_epoch = epoch
        if run.exitcode == 0:
            break  # this machine ran much faster than during the reference run: finished
    assert killed >= 10
    assert last_epoch > 0  # the kills landed during training

    # Finish in a fresh interpreter, from whatever the last kill left.
    result = tmp_path / "result.npz"
    subprocess.run([sys.executable, str(HELPER), str(checkpoint), str(KILL_EPOCHS), str(result)],
                   check=True, timeout=120)
    with np.load(result) as finished:
        assert_same_weights({k: finished[k] for k in reference_model.state_dict()},
                            reference_model.state_dict())
        np.testing.assert_array_equal(finished["train_loss"], reference.train_loss)
        np.testing.assert_array_equal(finished["val_loss"], reference.val_loss)
    assert os.listdir(checkpoint.parent) == ["ckpt.npz"]  # leftovers cleaned by later saves
    print(f"kill test: {killed} kills, {len(seen_temporaries)} killed mid-write (temporary file "
          f"left), last checkpoint at epoch {last_epoch} of {KILL_EPOCHS}, "
          f"one run takes {run_time:.2f} s")

