import VisionData

extension WeightRegistry {
    /// SE-ResNet / SE-ResNeXt / SENet-154 weights.
    ///
    /// - timm's `legacy_se*` files (Cadene naming; FORMATS.md §3.3): URLs, interpolation and crop from
    ///   timm 1.0.31's `pretrained_cfg` (introspected); accuracy from timm's results-imagenet.csv as
    ///   quoted there; parameters and GFLOPS counted on timm's models (`sum(p.numel())`,
    ///   `torch.utils.flop_counter` / 2 at 224x224).
    /// - Cadene's `pretrainedmodels` files (§3.2): the original ports of the Caffe weights; accuracy
    ///   from Cadene's README; preprocessing RGB [0, 1], ImageNet mean/std, resize 256 (224 / 0.875),
    ///   crop 224, bilinear.
    /// - timm's torchvision-style `seresnet50.ra2_in1k` (§3.4).
    /// File names follow torch hub's `<stem>-<hex>.pth` convention, so the SHA-256 prefix rule applies
    /// as torch hub would apply it (timm itself does not check it by default).
    static let squeezeExcitationEntries: [WeightEntry] = {
        let timmBase = "https://github.com/rwightman/pytorch-image-models/releases/download/"
        func crop875(_ interpolation: Interpolation) -> Preprocessing {
            .imageClassification(cropSize: 224, resizeSize: 256, interpolation: interpolation)
        }
        // (timm name, Swift architecture, release path, acc@1, acc@5, params, GFLOPS, interpolation)
        typealias Row = (String, String, String, Double, Double, Int, Double, Interpolation)
        let timm: [Row] = [
            ("legacy_seresnet18", "legacy_seresnet18", "v0.1-weights/seresnet18-4bb0ce65.pth", 71.742, 90.340, 11_778_592, 1.814, .bicubic),
            (
                "legacy_seresnet34", "legacy_seresnet34", "v0.1-weights/seresnet34-a4004e63.pth", 74.788, 92.134, 21_958_868, 3.664,
                .bilinear
            ),
            ("legacy_seresnet50", "se_resnet50", "v0.1-cadene/se_resnet50-ce0d4300.pth", 77.650, 93.732, 28_088_024, 3.860, .bilinear),
            ("legacy_seresnet101", "se_resnet101", "v0.1-cadene/se_resnet101-7e38fcc6.pth", 78.370, 94.264, 49_326_872, 7.575, .bilinear),
            ("legacy_seresnet152", "se_resnet152", "v0.1-cadene/se_resnet152-d17c99b7.pth", 78.662, 94.370, 66_821_848, 11.289, .bilinear),
            (
                "legacy_seresnext26_32x4d", "legacy_seresnext26_32x4d", "v0.1-weights/seresnext26_32x4d-65ebdb501.pth", 77.100, 93.332,
                16_790_280, 2.472, .bicubic
            ),
            (
                "legacy_seresnext50_32x4d", "se_resnext50_32x4d", "v0.1-weights/legacy_se_resnext50_32x4d-f3651bad.pth", 79.080, 94.428,
                27_559_896, 4.233, .bilinear
            ),
            (
                "legacy_seresnext101_32x4d", "se_resnext101_32x4d", "v0.1-weights/legacy_se_resnext101_32x4d-37725eac.pth", 80.274, 95.032,
                48_955_416, 7.975, .bilinear
            ),
            ("legacy_senet154", "senet154", "v0.1-weights/legacy_senet154-e9eb9fe6.pth", 81.320, 95.502, 115_088_984, 20.688, .bilinear),
        ]
        var out: [WeightEntry] = timm.map { r in
            let file = String(r.2.split(separator: "/").last!)
            return WeightEntry(
                name: "\(r.0).in1k", architecture: r.1, tag: "in1k", origin: .timm, url: timmBase + r.2,
                integrity: IntegrityRule.fromTorchHubFileName(file), fileMegabytes: nil, parameterCount: r.5, gflops: r.6,
                top1: r.3, top5: r.4, preprocessing: crop875(r.7), isDefault: true,
                notes: r.1 == "legacy_seresnext26_32x4d"
                    ? "timm only; no Swift architecture of that name yet"
                    : "Cadene key names (layer0.*, se_module.*, last_linear); 2018-era file, expect the pre-1.6 format")
        }
        // (Swift architecture, file, acc@1, acc@5, params, GFLOPS): Cadene/pretrained-models.pytorch README.
        let cadene: [(String, String, Double, Double, Int, Double)] = [
            ("se_resnet50", "se_resnet50-ce0d4300.pth", 77.636, 93.752, 28_088_024, 3.860),
            ("se_resnet101", "se_resnet101-7e38fcc6.pth", 78.396, 94.258, 49_326_872, 7.575),
            ("se_resnet152", "se_resnet152-d17c99b7.pth", 78.658, 94.374, 66_821_848, 11.289),
            ("se_resnext50_32x4d", "se_resnext50_32x4d-a260b3a4.pth", 79.076, 94.434, 27_559_896, 4.233),
            ("se_resnext101_32x4d", "se_resnext101_32x4d-3b2fe3d8.pth", 80.236, 95.028, 48_955_416, 7.975),
            ("senet154", "senet154-c7b49a05.pth", 81.304, 95.498, 115_088_984, 20.688),
        ]
        for r in cadene {
            out.append(
                WeightEntry(
                    name: "cadene.\(r.0)", architecture: r.0, tag: "imagenet", origin: .cadene,
                    url: "http://data.lip6.fr/cadene/pretrainedmodels/" + r.1, integrity: IntegrityRule.fromTorchHubFileName(r.1),
                    fileMegabytes: nil, parameterCount: r.4, gflops: r.5, top1: r.2, top5: r.3, preprocessing: crop875(.bilinear),
                    notes: "Cadene's pretrainedmodels port of the Caffe weights; AvgPool2d(7) head, so 224x224 input"))
        }
        out.append(
            WeightEntry(
                name: "seresnet50.ra2_in1k", architecture: "seresnet50", tag: "ra2_in1k", origin: .timm,
                url: timmBase + "v0.1-weights/seresnet50_ra_224-8efdb4bb.pth", integrity: .sha256Prefix("8efdb4bb"),
                fileMegabytes: nil, parameterCount: 28_088_024, gflops: 4.092, top1: 80.260, top5: nil,
                preprocessing: crop875(.bicubic), isDefault: true,
                notes: "timm's torchvision-style SE-ResNet-50 (se.fc1/fc2, stride on the 3x3); acc@1 at 224 from FORMATS.md §3.4"))
        return out
    }()
}
