"""Which weights learn and how fast: adapter methods, freezing, parameter groups, lr schedules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.train.adapters import apply_method
from tui_tune.train.errors import UserError
from tui_tune.train.model import (
    load_backbone,
    load_tokenizer,
    parameter_counts,
    preflight,
)
from tui_tune.train.optim import lr_factor, make_optimizer, make_scheduler, parameter_groups

pytestmark = pytest.mark.xdist_group("train-model")  # module fixtures load once


def experiment(demo, *overrides: str):
    sets = [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{demo / "data" / "train.jsonl"}"', *overrides]
    return resolve(str(builtin_dir() / "demo-tiny.toml"), sets).experiment


def built(demo, *overrides: str):
    exp = experiment(demo, *overrides)
    tokenizer = load_tokenizer(exp)
    return exp, apply_method(load_backbone(exp, tokenizer, torch.device("cpu")), exp)


def trainable_names(model) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_methods_train_the_right_weights(demo_assets):
    _, full = built(demo_assets)
    total, trainable = parameter_counts(full)
    assert trainable == total
    _, frozen = built(demo_assets, 'adapter.freeze_layers=["embed_tokens"]')
    assert not any("embed_tokens" in n for n in trainable_names(frozen))
    _, last = built(demo_assets, 'adapter.method="last_layer"')
    names = trainable_names(last)
    assert names and all(n.startswith(("model.layers.3.", "lm_head", "model.norm")) for n in names)
    lora_sets = ['adapter.method="lora"', "adapter.r=4", 'adapter.target_modules=["q_proj"]']
    _, lora = built(demo_assets, *lora_sets)
    _, dora = built(demo_assets, *lora_sets[:-1], 'adapter.method="dora"',
                    'adapter.target_modules=["q_proj"]')
    lora_n, dora_n = parameter_counts(lora)[1], parameter_counts(dora)[1]
    assert lora_n == 4 * 2 * 128 * 4  # 4 layers x (A + B) x hidden x r
    assert dora_n == lora_n + 4 * 128  # DoRA adds a magnitude vector per layer
    _, unfrozen = built(demo_assets, *lora_sets, 'adapter.unfreeze_layers=["lm_head"]')
    assert any("lm_head" in n for n in trainable_names(unfrozen))
    _, ssf = built(demo_assets, 'adapter.method="ssf"', 'adapter.target_modules=["q_proj"]')
    assert parameter_counts(ssf)[1] == 4 * 2 * 128


def test_rslora_scales_by_sqrt_rank(demo_assets):
    sets = ['adapter.method="lora"', "adapter.r=16", "adapter.alpha=16"]
    _, plain = built(demo_assets, *sets)
    _, rs = built(demo_assets, *sets, "adapter.use_rslora=true")
    layer = lambda m: next(mod for n, mod in m.named_modules() if n.endswith("q_proj"))
    assert layer(plain).scaling["default"] == pytest.approx(1.0)
    assert layer(rs).scaling["default"] == pytest.approx(16 / 16 ** 0.5)


def test_parameter_groups_differential_lr_and_no_decay(demo_assets):
    exp, model = built(demo_assets, "training.weight_decay=0.1",
                       'training.differential_lr = { lm_head = 1e-5 }')
    groups = parameter_groups(model, exp.training)
    by_name = {n: g for g in groups for n in g["names"]}
    assert by_name["lm_head.weight"]["lr"] == 1e-5
    assert by_name["model.layers.0.self_attn.q_proj.weight"]["lr"] == exp.training.lr
    assert by_name["model.layers.0.self_attn.q_proj.weight"]["weight_decay"] == 0.1
    assert by_name["model.norm.weight"]["weight_decay"] == 0.0
    optimizer = make_optimizer(model, exp.training, on_cuda=False)
    assert isinstance(optimizer, torch.optim.AdamW) and len(optimizer.param_groups) == len(groups)
    sgd = make_optimizer(model, experiment(demo_assets, 'training.optimizer="sgd"',
                                           "training.momentum=0.9").training, on_cuda=False)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9


def test_schedules_warm_up_then_decay_to_the_floor(demo_assets):
    assert [round(lr_factor(s, 4, 20, "cosine", 0.1), 3) for s in (0, 3)] == [0.2, 0.8]
    assert lr_factor(4, 4, 20, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(20, 4, 20, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(12, 4, 20, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(15, 4, 20, "constant", 0.0) == 1.0
    exp, model = built(demo_assets, 'training.schedule="linear"', "training.warmup_ratio=0",
                       "training.warmup_epochs=0.5", "training.min_lr_ratio=0.2")
    optimizer = make_optimizer(model, exp.training, on_cuda=False)
    scheduler = make_scheduler(optimizer, exp.training, steps_total=40, steps_per_epoch=20)
    lrs = []
    for _ in range(40):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(exp.training.lr) and lrs.index(max(lrs)) == 10
    assert lrs[-1] == pytest.approx(exp.training.lr * (0.2 + 0.8 / 30))


def test_eight_bit_dora_is_refused_without_cuda(demo_assets):
    if torch.cuda.is_available():
        pytest.skip("the refusal applies to machines without CUDA")
    exp = experiment(demo_assets, 'architecture.backbone_dtype="int8"', 'adapter.method="qdora"')
    with pytest.raises(UserError, match="adapter.method.*8-bit DoRA needs a CUDA GPU.*int4"):
        preflight(exp)


def lora_tensors(model, part: str) -> list[torch.Tensor]:
    return [p.detach() for n, p in model.named_parameters() if f"lora_{part}" in n]


def test_init_weights_choose_how_the_adapter_starts(demo_assets):
    sets = ['adapter.method="lora"', "adapter.r=4", 'adapter.target_modules=["q_proj"]']
    _, default = built(demo_assets, *sets)
    assert all(torch.count_nonzero(b) == 0 for b in lora_tensors(default, "B"))
    _, gaussian = built(demo_assets, *sets, 'adapter.init_weights="gaussian"')
    assert all(abs(float(a.std()) - 1 / 4) < 0.05 for a in lora_tensors(gaussian, "A"))
    assert all(abs(float(a.std()) - 1 / 4) > 0.05 for a in lora_tensors(default, "A"))
    for init in ("pissa", "olora"):
        _, mutated = built(demo_assets, *sets, f'adapter.init_weights="{init}"')
        assert all(torch.count_nonzero(b) > 0 for b in lora_tensors(mutated, "B")), init


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_pissa_and_olora_final_adapters_reload_on_the_original_backbone(tmp_path, demo_assets,
                                                                        init):
    """These inits move part of each target weight into the adapter. peft records the init in
    adapter_config.json and redoes it (deterministically) when loading, so final/ still gives
    the trained model on the untouched backbone."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tui_tune.train.adapters import family_for

    _, model = built(demo_assets, 'adapter.method="lora"', "adapter.r=4",
                     'adapter.target_modules=["q_proj", "v_proj"]', "adapter.dropout=0",
                     f'adapter.init_weights="{init}"')
    torch.manual_seed(0)
    with torch.no_grad():  # stands in for training: the adapter moves away from its start
        for p in lora_tensors(model, "A") + lora_tensors(model, "B"):
            p.add_(torch.randn_like(p) * 0.05)
    family_for("lora").save(model, tmp_path / "final")
    ids = torch.randint(3, 300, (2, 12))
    trained = model.eval()(ids).logits
    base = AutoModelForCausalLM.from_pretrained(demo_assets / "model")
    reloaded = PeftModel.from_pretrained(base, tmp_path / "final").eval()
    assert torch.allclose(reloaded(ids).logits, trained, atol=1e-4)


def test_quantization_settings_reach_bitsandbytes(demo_assets):
    def loaded(*sets: str):
        exp = experiment(demo_assets, 'adapter.method="qlora"', *sets)
        return load_backbone(exp, load_tokenizer(exp), torch.device("cpu"))

    four = loaded('architecture.backbone_dtype="int4"', 'quantization.quant_type="fp4"',
                  "quantization.double_quant=false", 'quantization.compute_dtype="float32"')
    state = four.model.layers[0].self_attn.q_proj.weight.quant_state
    assert (state.quant_type, state.nested, state.dtype) == ("fp4", False, torch.float32)
    assert not four.model.layers[0].self_attn.q_proj.support_avx512bf16_for_cpu  # no CPU repack
    nf4 = loaded('architecture.backbone_dtype="int4"', 'quantization.compute_dtype="float32"')
    state = nf4.model.layers[0].self_attn.q_proj.weight.quant_state
    assert (state.quant_type, state.nested) == ("nf4", True)
    eight = loaded('architecture.backbone_dtype="int8"', "quantization.int8_threshold=3.5")
    layer = eight.model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == "Linear8bitLt" and layer.state.threshold == 3.5


@pytest.mark.parametrize("name,cls", [
    ("adamw", "AdamW"), ("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop"),
    ("adadelta", "Adadelta"), ("paged_adamw_32bit", "PagedAdamW32bit"),
    ("paged_adamw_8bit", "PagedAdamW8bit"), ("adamw_8bit", "AdamW8bit")])
def test_each_optimizer_with_its_settings_and_groups(demo_assets, name, cls):
    exp, model = built(demo_assets, 'adapter.method="lora"', "adapter.r=2",
                       f'training.optimizer="{name}"', "training.betas=[0.8, 0.95]",
                       "training.eps=1e-6", "training.momentum=0.5", "training.weight_decay=0.1")
    optimizer = make_optimizer(model, exp.training, on_cuda=False)
    assert type(optimizer).__name__ == cls
    group = optimizer.param_groups[0]
    assert len(optimizer.param_groups) == len(parameter_groups(model, exp.training))
    assert {g["weight_decay"] for g in optimizer.param_groups} <= {0.0, 0.1}
    if "betas" in group:
        assert tuple(group["betas"]) == (0.8, 0.95)
    if "eps" in group:
        assert group["eps"] == 1e-6
    if name in ("sgd", "rmsprop"):
        assert group["momentum"] == 0.5


def test_intermediate_dropout_acts_in_training_only(demo_assets):
    ids = torch.randint(3, 300, (2, 16))
    _, plain = built(demo_assets)
    _, dropped = built(demo_assets, "architecture.intermediate_dropout=0.5",
                       'architecture.attn_implementation="eager"')
    assert dropped.config.attention_dropout == 0.5 and plain.config.attention_dropout == 0.0
    assert not hasattr(dropped.config, "hidden_dropout")  # only keys the backbone knows
    plain.train()
    dropped.train()
    torch.manual_seed(0)
    assert torch.equal(plain(ids).logits, plain(ids).logits)
    assert not torch.allclose(dropped(ids).logits, dropped(ids).logits)
    dropped.eval()
    assert torch.equal(dropped(ids).logits, dropped(ids).logits)


def test_pretrained_weights_replace_the_backbones(tmp_path, demo_assets):
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    donor = AutoModelForCausalLM.from_pretrained(demo_assets / "model")
    with torch.no_grad():
        donor.lm_head.weight.mul_(2)
    donor.save_pretrained(tmp_path / "final")  # a previous run's final/ (full fine-tuning)
    save_file({"lm_head.weight": donor.lm_head.weight.contiguous()}, tmp_path / "head.safetensors")
    for source in (tmp_path / "final", tmp_path / "head.safetensors"):
        exp = experiment(demo_assets, f'general.pretrained_weights="{source}"')
        model = load_backbone(exp, load_tokenizer(exp), torch.device("cpu"))
        assert torch.equal(model.lm_head.weight, donor.lm_head.weight), source
    save_file({"nothing.like.this": torch.zeros(2)}, tmp_path / "other.safetensors")
    exp = experiment(demo_assets, f'general.pretrained_weights="{tmp_path / "other.safetensors"}"')
    with pytest.raises(UserError, match="general.pretrained_weights.*none of its weights fit"):
        load_backbone(exp, load_tokenizer(exp), torch.device("cpu"))


def test_pretrained_weights_from_an_adapter_run_merge_its_adapter(tmp_path, demo_assets):
    """A LoRA run's final/ (adapter_config.json + adapter weights): the next run starts from
    the backbone with that adapter folded in, whatever its own method."""
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    donor = get_peft_model(AutoModelForCausalLM.from_pretrained(demo_assets / "model"),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, weight in donor.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.1)  # a trained adapter: B is no longer zero
    donor.save_pretrained(tmp_path / "final")
    ids = torch.tensor([[1, 5, 9, 14, 30]])
    with torch.no_grad():
        expected = donor(input_ids=ids).logits
        plain = donor.get_base_model()
        with donor.disable_adapter():
            untouched = donor(input_ids=ids).logits
    assert not torch.allclose(expected, untouched)
    weights = f'general.pretrained_weights="{tmp_path / "final"}"'
    for method in ("full", "lora"):
        _, model = built(demo_assets, weights, f'adapter.method="{method}"')
        with torch.no_grad():
            assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-5), method
    assert type(plain).__name__ == "LlamaForCausalLM"

    config = json.loads((tmp_path / "final" / "adapter_config.json").read_text())
    config["target_modules"] = ["no_such_proj"]
    (tmp_path / "final" / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="general.pretrained_weights.*does not fit this backbone"):
        built(demo_assets, weights)
    (tmp_path / "ssf").mkdir()
    (tmp_path / "ssf" / "ssf_config.json").write_text('{"method": "ssf", "layers": []}')
    with pytest.raises(UserError, match="general.pretrained_weights.*an SSF run's final"):
        built(demo_assets, f'general.pretrained_weights="{tmp_path / "ssf"}"')


def test_pretrained_weights_follow_a_chain_of_continued_adapter_runs(tmp_path, demo_assets):
    """Run B continued from run A's adapter, so B's adapter only fits the backbone with A's
    merged in: starting from B's final/ merges A's first (named in B's config.toml)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    def trained_adapter(model, targets: list[str], run: Path):
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
        with torch.no_grad():
            for name, weight in peft_model.named_parameters():
                if "lora_B" in name:
                    weight.normal_(0, 0.1)
        peft_model.save_pretrained(run / "final")
        return peft_model

    first = trained_adapter(AutoModelForCausalLM.from_pretrained(demo_assets / "model"),
                            ["q_proj"], tmp_path / "run-a")
    (tmp_path / "run-a" / "config.toml").write_text('[general]\nbackbone = "x"\n')
    second = trained_adapter(first.merge_and_unload(), ["v_proj"], tmp_path / "run-b")
    (tmp_path / "run-b" / "config.toml").write_text(  # as a run stores it: absolute
        f'[general]\npretrained_weights = "{tmp_path / "run-a" / "final"}"\n')
    ids = torch.tensor([[1, 5, 9, 14, 30]])
    with torch.no_grad():
        expected = second(input_ids=ids).logits
        _, model = built(demo_assets, f'general.pretrained_weights="{tmp_path / "run-b" / "final"}"',
                         'adapter.method="full"')
        assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-5)
    import shutil

    checkpoint = tmp_path / "run-b" / "checkpoints" / "step-5"  # B stopped, not completed
    shutil.copytree(tmp_path / "run-b" / "final", checkpoint)
    with torch.no_grad():
        _, model = built(demo_assets, f'general.pretrained_weights="{checkpoint}"')
        assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-5)

    shutil.rmtree(tmp_path / "run-a")
    with pytest.raises(UserError, match="trained on top of .*run-a.*no longer exists"):
        built(demo_assets, f'general.pretrained_weights="{tmp_path / "run-b" / "final"}"')


def test_trackers_that_cannot_report_are_refused_before_loading(demo_assets):
    import importlib.util

    preflight(experiment(demo_assets, 'logging.tracker="tensorboard"'))
    with pytest.raises(UserError, match="logging.tracker.*no neptune tracker"):
        preflight(experiment(demo_assets, 'logging.tracker="neptune"'))
    for name in ("wandb", "mlflow"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(UserError, match=f"logging.tracker.*pip install {name}"):
                preflight(experiment(demo_assets, f'logging.tracker="{name}"'))


def test_gradient_checkpointing_compile_and_liger_switches(tmp_path, demo_assets):
    import importlib.util

    from tui_tune.train.model import speedups
    from tui_tune.train.reporting import Reporter

    _, plain = built(demo_assets)
    _, checkpointed = built(demo_assets, "architecture.gradient_checkpointing=true")
    def checkpointing(model) -> bool:  # renamed in transformers 5.23; 5.17 has the old name
        if hasattr(type(model), "is_activation_checkpointing"):
            return model.is_activation_checkpointing
        return model.is_gradient_checkpointing
    assert checkpointing(checkpointed) and not checkpointing(plain)
    exp = experiment(demo_assets, "architecture.compile=true", "architecture.liger_kernel=true")
    reporter = Reporter(tmp_path, rank=0)
    compiled = speedups(plain, exp, reporter)
    reporter.end("completed")
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule)
    if importlib.util.find_spec("liger_kernel") is None:
        warning = (tmp_path / "events.jsonl").read_text()
        assert "liger-kernel package is not installed" in warning


def test_qssf_scales_and_shifts_a_4bit_backbone(demo_assets):
    _, model = built(demo_assets, 'adapter.method="qssf"', 'architecture.backbone_dtype="int4"',
                     'quantization.compute_dtype="float32"', 'adapter.target_modules=["q_proj"]')
    wrapped = [m for n, m in model.named_modules() if n.endswith("q_proj")]
    assert len(wrapped) == 4 and all(type(m.base).__name__ == "Linear4bit" for m in wrapped)
    assert parameter_counts(model)[1] == 4 * 2 * 128


@pytest.mark.parametrize("sets,setting", [
    (['adapter.method="lora"', 'adapter.target_modules=["qproj"]'], "adapter.target_modules"),
    (['adapter.method="lora"', 'adapter.unfreeze_layers=["lmhead"]'], "adapter.unfreeze_layers"),
    (['adapter.method="ssf"', 'adapter.unfreeze_layers=["lmhead"]'], "adapter.unfreeze_layers"),
    (['adapter.freeze_layers=["embedtokens"]'], "adapter.freeze_layers")])
def test_layer_patterns_that_match_nothing_are_refused(demo_assets, sets, setting):
    """A typo would otherwise leave the switch silently doing nothing."""
    with pytest.raises(UserError, match=f"{setting}.*matches no layer.*lm_head.*q_proj"):
        built(demo_assets, *sets)


def test_last_layer_finds_the_top_block_of_other_architectures():
    """Not only Llama's `model.layers` + `model.norm`: T5 (its blocks hold `layer` lists), BART
    (the decoder runs last), BERT (a pooler after the stack), GPT-2 (`h`, `ln_f`)."""
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        BertConfig,
        BertForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5ForConditionalGeneration,
    )

    from tui_tune.train.adapters.layers import last_block_parameters

    def tops(model) -> set[str]:
        return {".".join(n.split(".")[:-1]) for n in last_block_parameters(model)}

    t5 = tops(T5ForConditionalGeneration(T5Config(
        d_model=16, d_ff=32, num_layers=2, num_heads=2, d_kv=8, vocab_size=64)))
    assert {"decoder.block.1.layer.2.DenseReluDense.wo", "decoder.final_layer_norm"} <= t5
    assert not any(n.startswith(("encoder.", "decoder.block.0.")) for n in t5)
    bart = tops(BartForConditionalGeneration(BartConfig(
        d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=64)))
    assert bart and all(n.startswith("model.decoder.layers.1.") for n in bart)
    bert = tops(BertForSequenceClassification(BertConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        vocab_size=64)))
    assert {"bert.encoder.layer.1.output.dense", "bert.pooler.dense", "classifier"} <= bert
    assert not any(n.startswith("bert.encoder.layer.0.") for n in bert)
    gpt2 = tops(GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=2, n_head=2, vocab_size=64,
                                           bos_token_id=0, eos_token_id=0)))
    assert {"transformer.h.1.mlp.c_fc", "transformer.ln_f"} <= gpt2
    assert not any(n.startswith("transformer.h.0.") for n in gpt2)
