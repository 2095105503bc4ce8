"""Build Wide ResNets from the paper and check their sizes against its tables.

    python examples/build_models.py

Runs on any Keras backend (set KERAS_BACKEND=jax or torch to try another).
"""

import keras_wrn

# By arguments, as in keras.applications: WRN-28-10 for CIFAR-100.
model = keras_wrn.WideResNet(depth=28, k=10, num_classes=100)
print(f"{model.name}: {keras_wrn.count_params(model):,} parameters, output {model.output_shape}")

# By registry name, with overrides: the paper's SVHN model (dropout 0.4).
model = keras_wrn.get_model("wrn-16-8-dropout", num_classes=10)
print(f"{model.name}: dropout {model.dropout_rate}, {keras_wrn.count_macs(model) / 1e9:.3f} GMACs/image")

# Every block type of Table 2 at k = 2, and its parameter count.
for block_type, depth in [("B(1,3,1)", 40), ("B(3,1)", 40), ("B(1,3)", 40),
                          ("B(3,1,1)", 40), ("B(3,3)", 28), ("B(3,1,3)", 22)]:
    model = keras_wrn.WideResNet(depth, 2, block_type=block_type)
    print(f"WRN-{depth}-2 {block_type:9s} N={model.blocks_per_group}  "
          f"{keras_wrn.count_params(model) / 1e6:.2f}M parameters")

# Table 3: WRN-40-2 with l = 1..4 3x3 convolutions per block.
for l in (1, 2, 3, 4):
    model = keras_wrn.WideResNet(40, 2, deepening_factor=l)
    print(f"WRN-40-2 l={l}: N={model.blocks_per_group} blocks per group")

# ImageNet: torchvision's wide_resnet50_2, and the wide WRN-18 at width 1.5.
for model in (keras_wrn.WideResNet50_2(), keras_wrn.WideResNet18(width=1.5)):
    print(f"{model.name}: {keras_wrn.count_params(model):,} parameters")

# Every registered model and the paper's numbers for it.
for name in keras_wrn.list_models(family="cifar")[:3]:
    spec = keras_wrn.get_model_spec(name)
    print(name, spec.params, [f"{r.dataset} {r.error}% ({r.table})" for r in spec.paper])
