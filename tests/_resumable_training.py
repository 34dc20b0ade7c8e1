"""A resumable training run, for the kill test of tests/test_train.py.

`train(checkpoint, epochs)` builds the same numpy model, optimizer, schedule and early
stopping every time, resumes from `checkpoint` if the file exists, and trains to `epochs`
epochs, saving a checkpoint after each one. The test kills it at random moments and checks
that every run picks up where the last checkpoint left off.

Run from the command line to finish a run in a fresh interpreter and write the result:

    python tests/_resumable_training.py CHECKPOINT EPOCHS RESULT.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dlhelpers import losses, nn, optim
from dlhelpers.data import make_moons
from dlhelpers.train import EarlyStopping, fit, load_checkpoint

SEED = 20240601


def build():
    """Data, model (with Dropout: its generator must be restored), optimizer, schedule."""
    X, y = make_moons(480, noise=0.25, rng=SEED)
    model = nn.Sequential(
        nn.Dense(2, 48, rng=1), nn.ReLU(), nn.Dropout(0.2, rng=2),
        nn.Dense(48, 48, rng=3), nn.Tanh(), nn.Dense(48, 2, rng=4),
    )
    optimizer = optim.Adam(model.parameters(), lr=0.005)
    scheduler = optim.StepLR(optimizer, step_size=7, gamma=0.8)
    early_stopping = EarlyStopping(patience=10_000)  # never fires; its state is checkpointed
    return (X[:400], y[:400], X[400:], y[400:]), model, optimizer, scheduler, early_stopping


def train(checkpoint, epochs: int, ready=None):
    """Train to `epochs` epochs, resuming from `checkpoint` if it exists; return model, history.

    `ready()`, if given, is called once everything is loaded, just before training starts.
    """
    (X_train, y_train, X_val, y_val), model, optimizer, scheduler, early_stopping = build()
    start_epoch, history = 0, None
    if Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint, model, optimizer, scheduler=scheduler,
                                early_stopping=early_stopping)
        start_epoch, history = saved["epoch"], saved["history"]
    if ready is not None:
        ready()
    history = fit(model, optimizer, losses.CrossEntropyLoss(), X_train, y_train,
                  X_val=X_val, y_val=y_val, epochs=epochs, batch_size=32, rng=SEED,
                  progress=False, scheduler=scheduler, early_stopping=early_stopping,
                  checkpoint_path=checkpoint, history=history, start_epoch=start_epoch)
    return model, history


def main(argv: list[str]) -> None:
    checkpoint, epochs, result = argv
    model, history = train(checkpoint, int(epochs))
    np.savez(result, **model.state_dict(), train_loss=np.array(history.train_loss),
             val_loss=np.array(history.val_loss))


if __name__ == "__main__":
    main(sys.argv[1:])
