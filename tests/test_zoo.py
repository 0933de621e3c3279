"""EfficientNet and torchvision's models, adapted to 32x32 images, with the instruments on them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.instruments import layer_groups
from engine.models.efficientnet import EfficientNet32, efficientnet
from engine.models.zoo import ZooError, torchvision_model


def test_efficientnet_keeps_small_images_at_a_useful_resolution():
    model = EfficientNet32("efficientnet_b0", num_classes=7)
    assert model.stem[0].stride == (1, 1)  # torchvision's is 2: 32x32 would reach the head at 1x1
    sizes = []
    model.head.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert sizes == [(2, 2)]
    # the instruments group parameters per stage, like a ResNet's layers
    assert list(layer_groups(model)) == ["stem", *[f"stage{i}" for i in range(1, 8)], "head", "fc"]
    assert any(isinstance(m, nn.Sigmoid) for m in model.modules())  # SE gates the instruments report
    with pytest.raises(ValueError, match="model.width must be 1.0"):
        efficientnet("efficientnet_b0")(10, width=0.5)


def test_torchvision_models_are_adapted_like_cifar_resnets():
    model = torchvision_model("resnet18", num_classes=10)
    assert model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert list(layer_groups(model)) == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
    mobile = torchvision_model("mobilenet_v3_small", num_classes=5)
    assert mobile.features[0][0].stride == (1, 1)


def test_a_wrong_or_unfit_torchvision_name_is_a_clear_usage_error():
    with pytest.raises(ZooError, match=r"no classification model 'resnet19'; did you mean resnet18"):
        torchvision_model("resnet19", 10)
    with pytest.raises(ZooError, match=r"no classification model 'maskrcnn_resnet50_fpn'"):
        torchvision_model("maskrcnn_resnet50_fpn", 10)  # detection, not classification
    with pytest.warns(FutureWarning), pytest.raises(ZooError, match=r"inception_v3 cannot take 32x32 images"):
        torchvision_model("inception_v3", 10)
