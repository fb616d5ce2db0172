"""The detectors a run can train or evaluate. ``MODELS`` (name -> one line) is pure and read by the
CLI and the GUI at start; :func:`build` imports torch and is called by the run process only.

Every model is a torchvision detector built for training from scratch: its normalisation layers
learn (BatchNorm2d, not the frozen batch norm of torchvision's pretrained recipes, whose statistics
from an untrained backbone would never move). A weights file (a state_dict) can be loaded on top to
fine-tune (:func:`load_weights`). Images arrive already resized by the data loader (``image_size``)
and in attenuation units (:mod:`core.training.data`), so the models' own resizing and ImageNet
normalisation are turned off.
"""

from __future__ import annotations

from typing import Any

MODELS: dict[str, str] = {
    "retinanet_resnet50_fpn": "RetinaNet, ResNet-50 FPN (P3-P7), 33 M parameters: the reference single-stage detector",
    "retinanet_resnet18_fpn": "RetinaNet, ResNet-18 FPN (P3-P7), 20 M parameters: faster, for smaller GPUs",
    "fasterrcnn_resnet50_fpn": "Faster R-CNN, ResNet-50 FPN, 41 M parameters: two-stage, strong on small items",
    "fasterrcnn_resnet18_fpn": "Faster R-CNN, ResNet-18 FPN, 28 M parameters: two-stage, faster",
    "retinanet_tiny": "RetinaNet on an 8-layer CNN, 0.8 M parameters: trains on a CPU in minutes at image_size "
                      "<= 256 (demo and tests; too small for a real test set)",
}


def build(name: str, num_classes: int, params: dict[str, Any]):  # noqa: ANN201 - torch.nn.Module
    """The detector ``name`` for ``num_classes`` classes plus the background (index 0), initialised
    from ``torch``'s current random state, keeping detections scored at least ``score_threshold``
    (at most ``max_detections`` per image)."""
    from torch import nn
    from torchvision.models.detection import FasterRCNN, RetinaNet, retinanet_resnet50_fpn
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    if name not in MODELS:
        raise KeyError(name)
    k = num_classes + 1
    retina = {"score_thresh": params["score_threshold"], "detections_per_img": params["max_detections"]}
    rcnn = {"box_score_thresh": params["score_threshold"], "box_detections_per_img": params["max_detections"]}
    if name == "retinanet_resnet50_fpn":
        model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=k, **retina)
    elif name == "retinanet_resnet18_fpn":
        backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=nn.BatchNorm2d,
                                       trainable_layers=5, returned_layers=[2, 3, 4],
                                       extra_blocks=LastLevelP6P7(256, 256))
        model = RetinaNet(backbone, k, **retina)
    elif name == "fasterrcnn_resnet50_fpn":
        backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=nn.BatchNorm2d,
                                       trainable_layers=5)
        model = FasterRCNN(backbone, k, **rcnn)
    elif name == "fasterrcnn_resnet18_fpn":
        backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=nn.BatchNorm2d,
                                       trainable_layers=5)
        model = FasterRCNN(backbone, k, **rcnn)
    else:
        model = _tiny_retinanet(k, retina)
    model.transform = _transform(params["image_size"])
    return model


def _transform(image_size: int):  # noqa: ANN202
    """torchvision's batching (padding to a multiple of 32) without its resize and normalisation:
    the data loader has done both, on the CPU workers, in the units the model is trained in."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class LoaderSized(GeneralizedRCNNTransform):
        def resize(self, image, target=None):  # noqa: ANN001, ANN202
            return image, target

        def normalize(self, image):  # noqa: ANN001, ANN202
            return image

    return LoaderSized(image_size, image_size, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])


def _tiny_retinanet(num_classes: int, options: dict[str, Any]):  # noqa: ANN202
    """A RetinaNet small enough for a CPU: five stride-2 stages of 16-128 channels (C3-C5 at strides
    8-32), a 32-channel FPN with a P6, anchors 16-181 px (two scales, three aspect ratios per level),
    and a head of two GroupNorm conv layers per subnet (four without norm learn far slower from
    scratch on a few hundred images; measured on the tests' simulated scans)."""
    from collections import OrderedDict
    from functools import partial

    from torch import nn
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.retinanet import RetinaNetHead
    from torchvision.ops import FeaturePyramidNetwork
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    def block(cin: int, cout: int, convs: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for n in range(convs):
            layers += [nn.Conv2d(cin if n == 0 else cout, cout, 3, 2 if n == 0 else 1, 1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)

    widths = (16, 32, 64, 96, 128)
    channels = 32

    class TinyBackbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList(block(cin, cout, convs) for cin, cout, convs
                                        in zip((3, *widths[:-1]), widths, (1, 1, 2, 2, 2)))
            self.fpn = FeaturePyramidNetwork(list(widths[2:]), channels, extra_blocks=LastLevelMaxPool())
            self.out_channels = channels

        def forward(self, x):  # noqa: ANN001, ANN202
            features = OrderedDict()
            for n, stage in enumerate(self.stages):
                x = stage(x)
                if n >= 2:
                    features[f"c{n + 1}"] = x
            return self.fpn(features)

    sizes = tuple((s, round(s * 2 ** 0.5)) for s in (16, 32, 64, 128))
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    head = RetinaNetHead(channels, anchors.num_anchors_per_location()[0], num_classes,
                         norm_layer=partial(nn.GroupNorm, 16))
    # Two conv layers per subnet instead of torchvision's four: at this width the head is the cost.
    head.classification_head.conv = head.classification_head.conv[:2]
    head.regression_head.conv = head.regression_head.conv[:2]
    return RetinaNet(TinyBackbone(), num_classes, anchor_generator=anchors, head=head, **options)


def load_weights(model, state: dict[str, Any]) -> tuple[int, int]:  # noqa: ANN001 - torch.nn.Module
    """Load a state_dict's tensors whose names and shapes fit ``model`` (a classification head for
    other classes, say, does not); a backbone's own weights (``conv1.weight``, ...) are found under
    ``backbone.body``. Returns (tensors loaded, tensors of the file left out). Raises ValueError when
    nothing fits."""
    own = model.state_dict()
    best: dict[str, Any] = {}
    for prefix in ("", "backbone.body."):
        fitting = {prefix + key: value for key, value in state.items()
                   if prefix + key in own and getattr(value, "shape", None) == own[prefix + key].shape}
        if len(fitting) > len(best):
            best = fitting
    if not best:
        raise ValueError("none of its tensors fit this model (another architecture?)")
    model.load_state_dict(best, strict=False)
    return len(best), len(state) - len(best)
