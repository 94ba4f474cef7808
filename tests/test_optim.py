"""The optimizer's groups and the schedules: discriminative learning rates by layer, the slanted triangular
schedule, and gradual unfreezing (ULMFiT), besides the default AdamW groups."""

import pytest
import torch

from seqtext.classifier.model import ClassifierConfig, TextClassifier
from seqtext.optim import learning_rate, make_optimizer, set_learning_rate, unfreeze_for_epoch
from seqtext.recipe import TrainConfig, load_recipe
from seqtext.training import train

from .conftest import RECIPES, TINY_MODEL


def _classifier(num_layers=1, bidirectional=True):
    config = ClassifierConfig(
        embedding_size=8, hidden_size=6, num_layers=num_layers, bidirectional=bidirectional, attention_size=4
    )
    return TextClassifier(config, 50, 2)


def test_layer_decay_scales_each_layer_by_the_layers_above_it():
    model = _classifier(num_layers=2, bidirectional=False)
    optimizer = make_optimizer(model, TrainConfig(lr=1.0, layer_lr_decay=0.5))
    set_learning_rate(optimizer, 2.0)
    by_parameter = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    lrs = {name: by_parameter[id(p)] for name, p in model.named_parameters()}
    assert lrs["embedding.weight"] == 2.0 * 0.5**3  # layer 0 of 0..3
    assert lrs["encoder.forward_layers.0.weight_hh_l0"] == lrs["encoder.forward_layers.0.bias_ih_l0"] == 2.0 * 0.5**2
    assert lrs["encoder.forward_layers.1.weight_ih_l0"] == 2.0 * 0.5
    assert lrs["head.weight"] == lrs["pooling.attention.w.weight"] == 2.0
    assert len(by_parameter) == len(list(model.parameters()))  # every parameter in exactly one group
    decayed = {id(p) for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    assert id(model.embedding.weight) not in decayed and id(model.head.weight) in decayed and id(model.head.bias) not in decayed


def test_without_layer_decay_the_groups_are_the_usual_two():
    optimizer = make_optimizer(_classifier(), TrainConfig(lr=1.0))
    assert [sorted(group) for group in optimizer.param_groups][0].count("lr_scale") == 0 and len(optimizer.param_groups) == 2


@pytest.mark.parametrize("layer_lr_decay", [None, 0.5])
def test_the_ngram_table_has_its_own_rate_and_no_weight_decay(layer_lr_decay):
    config = ClassifierConfig(embedding_size=8, hidden_size=6, attention_size=4, ngrams=2, ngram_buckets=100)
    model = TextClassifier(config, 50, 2)
    optimizer = make_optimizer(model, TrainConfig(lr=1.0, weight_decay=0.1, layer_lr_decay=layer_lr_decay, ngram_lr_scale=15.0))
    set_learning_rate(optimizer, 2.0)
    (table,) = [group for group in optimizer.param_groups if any(p is model.ngrams.weight.weight for p in group["params"])]
    assert len(table["params"]) == 1 and table["lr"] == 30.0 and table["weight_decay"] == 0.0
    head = [group["lr"] for group in optimizer.param_groups if any(p is model.head.weight for p in group["params"])]
    assert head == [2.0]
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))


def test_the_slanted_triangular_schedule_rises_for_a_tenth_then_falls():
    config = TrainConfig(lr=3.2, schedule="slanted_triangular")
    assert learning_rate(config, 0, 100) == pytest.approx(0.1)  # lr / 32
    assert learning_rate(config, 10, 100) == pytest.approx(3.2)  # the peak at the cut
    assert learning_rate(config, 5, 100) == pytest.approx(3.2 * (1 + 0.5 * 31) / 32)
    assert learning_rate(config, 100, 100) == pytest.approx(0.1)


def test_unfreezing_trains_one_more_layer_each_epoch():
    model = _classifier()  # layers: embedding 0, recurrent 1, top 2
    trainable = []
    for epoch in range(4):
        unfreeze_for_epoch(model, epoch)
        trainable.append(sorted({name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}))
    assert trainable[0] == ["head", "pooling"] and trainable[1] == ["encoder", "head", "pooling"]
    assert trainable[2] == trainable[3] == ["embedding", "encoder", "head", "pooling"]


def test_a_gradually_unfrozen_run_leaves_the_frozen_layers_as_they_were(sst2_slice, tmp_path):
    from seqtext import checkpoint

    overrides = ["--data.dataset", str(sst2_slice), *TINY_MODEL, "--train.unfreeze", "true", "--train.layer_lr_decay", "0.4"]
    runs = {}
    for steps in (1, 9):  # both within the first epoch (600 texts, 10 batches), in which only the top layer trains
        recipe = load_recipe(RECIPES / "sst2.yaml", [*overrides, "--train.max_steps", str(steps), "--train.eval_every", "9"])
        train(recipe, tmp_path / str(steps), progress=False)
        runs[steps] = dict(checkpoint.load(tmp_path / str(steps) / "last").model.named_parameters())
    for name in ("embedding.weight", "encoder.forward_layers.0.weight_hh_l0", "encoder.backward_layers.0.bias_ih_l0"):
        assert torch.equal(runs[1][name], runs[9][name]), name  # both still the seeded start
    assert not torch.equal(runs[1]["head.weight"], runs[9]["head.weight"])
