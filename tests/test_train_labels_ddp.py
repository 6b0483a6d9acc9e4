"""Classification on two CPU ranks (gloo): each rank predicts its share of the validation rows
(an odd number of them), and the gathered metrics are those of the final model on all rows."""

from __future__ import annotations

import pytest
import torch
from conftest import read_events
from sklearn import metrics as skm
from test_train_ddp import launch
from test_train_labels import validation_outputs

pytestmark = [
    pytest.mark.slow, pytest.mark.xdist_group("train-labels-ddp"),
    pytest.mark.skipif(torch.cuda.device_count() == 1,
                       reason="one GPU: two nccl ranks cannot share it")]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory, make_run_dir, demo_assets):
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "ddp", [
        f'dataset.train_file="{demo_assets / "data" / "sentiment.jsonl"}"',
        "dataset.validation_size=0.0505", "training.max_steps=10", "training.eval_every_steps=10",
        "training.evaluate_before_training=false", "training.lr=0.0003",
        "prediction.batch_size=16"], preset="demo-classify")
    output = launch(run_dir).communicate(timeout=400)[0].decode(errors="replace")
    assert read_events(run_dir, "end")[-1]["status"] == "completed", output[-3000:]
    return run_dir


def test_two_ranks_report_the_metrics_of_every_validation_row(two_rank_run):
    from transformers import AutoModelForSequenceClassification

    assert read_events(two_rank_run, "start")[0]["world_size"] == 2
    last = read_events(two_rank_run, "eval")[-1]
    assert sum(map(sum, last["confusion"])) == 101  # an odd count: one rank has one more
    model = AutoModelForSequenceClassification.from_pretrained(two_rank_run / "final")
    logits, truth = validation_outputs(two_rank_run, model)
    probs = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    assert skm.log_loss(truth, probs, labels=[0, 1, 2]) == pytest.approx(last["logloss"],
                                                                          rel=1e-4)
    assert skm.confusion_matrix(truth, probs.argmax(1), labels=[0, 1, 2]).tolist() == \
        last["confusion"]
