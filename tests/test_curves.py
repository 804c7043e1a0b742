"""Learning curves and progress from metrics records, against hand computations."""

import pytest

from cnn.curves import recent_batch_values
from cnn.progress import progress


def test_recent_batch_values_undo_keras_running_means():
    # Per-batch losses 4, 2, 2, 0 (batch size 10): Keras logs running means 4, 3, 8/3, 2.
    records = [{"kind": "batch", "epoch": 1, "batch": b, "step": b, "batches_per_epoch": 4,
                "loss": mean} for b, mean in [(1, 4.0), (2, 3.0), (3, 8 / 3), (4, 2.0)]]
    # Recorded only at batches 1, 3 and 4: the value between records is their mean.
    kept = [records[0], records[2], records[3]]
    values = [v for _, v in recent_batch_values(kept, "loss", batch_size=10)]
    assert values == pytest.approx([4.0, 2.0, 0.0])
    # A new epoch starts a new running mean.
    new_epoch = {**records[0], "epoch": 2, "step": 5, "loss": 1.5}
    assert recent_batch_values([*kept, new_epoch], "loss", 10)[-1] == (1.25, 1.5)


def test_progress_counts_epochs_batches_and_time_left():
    records = [{"kind": "batch", "epoch": 1, "batch": b, "step": b, "batches_per_epoch": 10,
                "elapsed": 0.5 * b, "images_per_second": 1000.0} for b in (1, 5)]
    done, text = progress(records, epochs=2)
    assert done == 5 / 20
    assert text == "Epoch 1 of 2 · batch 5 of 10 · 1,000 images/s · about 8 s left"
    assert progress([], epochs=2) is None
