"""Checkpoints: everything needed to resume training, in one file written atomically.

Introduced in `08_regularization.ipynb` (the best model of early stopping, saved and loaded
back) and used by `dlhelpers.train.fit` (`checkpoint_path=`) in `09_capstone_digits.ipynb`.
`save_checkpoint` stores a model's weights with its optimizer, schedule, early stopping,
epoch, history and random state; `load_checkpoint` puts them all back, so a run resumed from
a checkpoint ends with exactly the weights of an uninterrupted run (see `dlhelpers.train`).
Both names are importable from `dlhelpers.train` too.

Torch models are stored with `torch.save` and read with `torch.load(weights_only=True)`; numpy
models as an `.npz` of arrays plus JSON, read with `np.load(allow_pickle=False)`: loading a
checkpoint never runs code. torch is imported only for a torch model.

Checkpoints are written atomically (a temporary file in the same directory, flushed to disk,
then renamed over the old one), so a crash at any moment leaves either the previous checkpoint
or the new one, never half a file. One process writes a given checkpoint path at a time.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pickle
import re
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dlhelpers import nn
from dlhelpers.train import EarlyStopping, History, _check_optimizer, _is_torch, _torch
from dlhelpers.validation import check_number, describe

CHECKPOINT_FORMAT = "dlhelpers-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, history: History | None = None,
                    *, scheduler=None, early_stopping: EarlyStopping | None = None,
                    **extra) -> Path:
    """Save everything needed to resume training to `path`, atomically; return the path.

    The checkpoint holds the model's weights, the optimizer's state (Adam's moments, ...), the
    scheduler's and early stopping's state if given, the epoch, the history, the random state
    of the model's randomness (numpy Dropout generators, or torch's global generator) and any
    `extra` keyword values (numbers, strings, lists, dicts, arrays/tensors), under a format
    version. Torch models are saved with `torch.save`, numpy models with `np.savez` (no pickle).
    The optimizer must be one of the model's kind (torch.optim for a torch model,
    dlhelpers.optim for a numpy model) and update its parameters, else TypeError/ValueError.

    The file is written to a temporary file in the same directory, flushed and fsync'ed, then
    renamed over `path` (`os.replace`, atomic): a crash leaves the old or the new checkpoint,
    never a broken one. It gets the mode of any new file (0o666 minus the umask). Temporary
    files left by a crashed earlier save are removed.

    >>> import tempfile, os
    >>> net = nn.Sequential(nn.Dense(2, 1, rng=0))
    >>> path = save_checkpoint(os.path.join(tempfile.mkdtemp(), "ckpt.npz"), net, epoch=3)
    >>> load_checkpoint(path, net)["epoch"]
    3
    """
    path = _checkpoint_path(path)
    torch_model = _is_torch(model)
    if optimizer is not None:
        _check_optimizer(model, optimizer)
    check_number(epoch, "epoch", low=0, integer=True)
    if history is not None and not isinstance(history, History):
        raise TypeError(f"history must be a History or None, got {describe(history)}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be an EarlyStopping, got {describe(early_stopping)}")
    _check_directory(path)
    content = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "backend": "torch" if torch_model else "numpy",
        "epoch": int(epoch),
        "history": None if history is None else history.to_dict(),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "early_stopping": None if early_stopping is None else early_stopping.state_dict(),
        "rng": _rng_state(model),
        "extra": _plain(extra, "extra", torch_model),
    }
    if torch_model:
        _atomic_write(path, lambda file: _torch().save(content, file))
    else:
        arrays = {}
        meta = json.dumps(_encode(content, "", arrays)).encode()
        arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
        _atomic_write(path, lambda file: np.savez(file, **arrays))
    return path


def load_checkpoint(path, model, optimizer=None, *, scheduler=None,
                    early_stopping: EarlyStopping | None = None,
                    restore_rng: bool = True) -> dict:
    """Load a checkpoint of `save_checkpoint` into `model` (and optimizer, scheduler, ...).

    Returns {"epoch": int, "history": History or None, "extra": dict}. With
    `restore_rng=True` the model's random state is restored too (numpy Dropout generators, or
    torch's global generator), so training continues exactly as it would have.

    Torch checkpoints are read with `torch.load(weights_only=True)` and numpy ones with
    `np.load(allow_pickle=False)`: a file that would run code when loaded is refused. Either
    everything loads or nothing changes.

    Raises FileNotFoundError for a missing file, TypeError for an optimizer of the other kind
    of model (as `save_checkpoint`), and ValueError, saying what is wrong, for a truncated,
    corrupt or foreign file or a checkpoint of a different model.
    """
    path = _checkpoint_path(path)
    torch_model = _is_torch(model)
    if optimizer is not None:
        _check_optimizer(model, optimizer)
    if not isinstance(restore_rng, bool):
        raise TypeError(f"restore_rng must be True or False, got {describe(restore_rng)}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    content = _read_torch(path) if torch_model else _read_numpy(path)
    _check_content(content, path, "torch" if torch_model else "numpy")
    parts = [(model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler"),
             (early_stopping, "early_stopping")]
    parts = [(target, name) for target, name in parts if target is not None]
    for _, name in parts:
        if content[name] is None:
            raise ValueError(f"checkpoint {path} has no {name} state to load")
    try:
        history = None if content["history"] is None else History.from_dict(content["history"])
    except ValueError as error:
        raise ValueError(f"checkpoint {path} has a broken history: {error}") from error
    # Load all or nothing: keep the current states, the random state too (the generators are
    # set one by one), to put back if any part does not fit.
    backups = [(target, copy.deepcopy(target.state_dict())) for target, _ in parts]
    rng_backup = _rng_state(model)
    try:
        for target, name in parts:
            target.load_state_dict(copy.deepcopy(content[name]))
        if restore_rng:
            _restore_rng(model, content["rng"])
    except BaseException as error:
        for target, state in backups:
            target.load_state_dict(state)
        _restore_rng(model, rng_backup)
        if isinstance(error, (ValueError, TypeError, KeyError, RuntimeError, IndexError,
                              OverflowError)):
            raise ValueError(f"checkpoint {path} does not fit: {error}") from error
        raise
    return {"epoch": content["epoch"], "history": history, "extra": content["extra"]}


def _checkpoint_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a pathlib.Path, got {describe(path)}")
    return Path(path)


def _check_directory(path: Path) -> None:
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the directory of checkpoint path {path} does not exist")


def _plain(value, name: str, torch_model: bool):
    """`value` if a checkpoint can store it safely (no pickled objects), else TypeError."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{name} keys must be strings or integers, got {key!r}")
            _plain(item, f"{name}[{key!r}]", torch_model)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _plain(item, f"{name}[{i}]", torch_model)
    elif not isinstance(value, (str, int, float, bool, type(None))):
        array_type = _torch().Tensor if torch_model else np.ndarray
        if not isinstance(value, array_type):
            raise TypeError(
                f"{name} must be a number, string, list, dict or {array_type.__name__} "
                f"to be stored in a checkpoint, got {describe(value)}"
            )
    return value


def _atomic_write(path: Path, write) -> None:
    """Write with `write(file)` to a temporary file beside `path`, fsync, rename onto `path`.

    The file gets the mode a plain `open(path, "w")` would give it (0o666 minus the umask).
    """
    file = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        # NamedTemporaryFile creates mode 0600; give the checkpoint the mode of any new file.
        os.chmod(file.name, 0o666 & ~_umask())
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(file.name, path)  # atomic: readers see the old file or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file.name)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    _remove_stale_temporaries(path)


def _umask() -> int:
    """The process umask. Reading it means setting it: os.umask returns the old value."""
    umask = os.umask(0o077)  # for that moment the strictest mask, should a thread create a file
    os.umask(umask)
    return umask


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of earlier saves to `path` that a crash left behind."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]+\.tmp")
    for leftover in path.parent.iterdir():
        if pattern.fullmatch(leftover.name):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _describe_archive(path: Path) -> str:
    """What kind of file `path` is: 'torch', 'numpy', or raise ValueError for anything else."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a dlhelpers checkpoint: it is not a complete zip archive "
            "(the file is truncated or corrupted, or was not written by save_checkpoint)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = archive.testzip()  # reads every entry and checks its CRC-32 checksum
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        raise ValueError(f"{path} is a corrupted zip archive: {error}") from error
    if damaged is not None:
        raise ValueError(f"{path} is corrupted: entry {damaged!r} fails its checksum")
    if "meta.npy" in names:
        return "numpy"
    if any(name.endswith("/data.pkl") for name in names):
        return "torch"
    raise ValueError(f"{path} is a zip archive but not a dlhelpers checkpoint")


def _wrong_backend(path: Path, found: str, wanted: str) -> ValueError:
    kinds = {"torch": "a torch model", "numpy": "a numpy (dlhelpers.nn) model"}
    return ValueError(
        f"{path} is a checkpoint of {kinds[found]}, but the model to load into is {kinds[wanted]}"
    )


def _read_torch(path: Path):
    found = _describe_archive(path)
    if found != "torch":
        raise _wrong_backend(path, found, "torch")
    try:
        return _torch().load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} was refused: it holds objects that only arbitrary code could rebuild, "
            f"and checkpoints are loaded with weights_only=True ({error})"
        ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} could not be read, it is corrupted: {error}") from error


def _read_numpy(path: Path):
    found = _describe_archive(path)
    if found != "numpy":
        raise _wrong_backend(path, found, "numpy")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        return _decode(meta, arrays)
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError) as error:
        raise ValueError(f"{path} could not be read, it is corrupted: {error}") from error


def _check_content(content, path: Path, backend: str) -> None:
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a dlhelpers checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    if content.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {content.get('version')!r}; this version "
            f"of dlhelpers reads version {CHECKPOINT_VERSION}"
        )
    keys = {"format", "version", "backend", "epoch", "history", "model", "optimizer",
            "scheduler", "early_stopping", "rng", "extra"}
    if set(content) != keys:
        raise ValueError(f"{path} is a damaged checkpoint: keys {sorted(content)}")
    if content["backend"] != backend:
        raise _wrong_backend(path, content["backend"], backend)
    epoch = content["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"{path} is a damaged checkpoint: epoch {epoch!r}")


# Random state of the model: numpy generators inside modules, or torch's global generator.


def _generators(module, prefix: str = "") -> dict[str, np.random.Generator]:
    """Every numpy Generator held by `module` or its sub-modules, by attribute path."""
    found = {}
    for name, value in vars(module).items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(items):
            where = f"{prefix}{name}" + (f".{i}" if items is value else "")
            if isinstance(item, np.random.Generator):
                found[where] = item
            elif isinstance(item, nn.Module):
                found.update(_generators(item, where + "."))
    return found


def _rng_state(model):
    """torch's global generator state (torch model), or the states of the model's generators."""
    if _is_torch(model):
        return _torch().get_rng_state()
    return {where: gen.bit_generator.state for where, gen in _generators(model).items()}


def _restore_rng(model, saved) -> None:
    if _is_torch(model):
        torch = _torch()
        if not isinstance(saved, torch.Tensor) or saved.dtype != torch.uint8:
            raise ValueError(f"the saved torch random state is damaged: {describe(saved)}")
        torch.set_rng_state(saved)
        return
    generators = _generators(model)
    if not isinstance(saved, dict) or set(saved) != set(generators):
        found = sorted(saved) if isinstance(saved, dict) else describe(saved)
        raise ValueError(
            f"the checkpoint has random generators at {found}, the model at {sorted(generators)}"
        )
    for where, generator in generators.items():
        generator.bit_generator.state = saved[where]


# Numpy checkpoints: arrays go into the .npz under their path, everything else into JSON.


def _encode(value, key: str, arrays: dict):
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"cannot store an object array at {key!r} without pickle")
        if key in arrays:
            raise ValueError(f"two arrays would be stored under the same name {key!r}")
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        return {"__dict__": [[k, _encode(v, f"{key}/{k}".lstrip("/"), arrays)]
                             for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    raise TypeError(f"cannot store {describe(value)} at {key!r} in a numpy checkpoint")


def _decode(value, arrays: dict):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict):
        (tag, inner), = value.items()  # every encoded dict has exactly one tag
        if tag == "__array__":
            return arrays[inner]
        if tag == "__tuple__":
            return tuple(_decode(v, arrays) for v in inner)
        if tag == "__dict__":
            return {k: _decode(v, arrays) for k, v in inner}
        raise ValueError(f"unknown tag {tag!r} in the checkpoint's metadata")
    return value
