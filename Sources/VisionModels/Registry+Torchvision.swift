import VisionData

extension WeightRegistry {
    /// torchvision 0.28's `ResNet*_Weights`, `ResNeXt*_Weights`, `Wide_ResNet*_Weights` and
    /// `DenseNet*_Weights` (FORMATS.md §2.4, verified by introspection: acc@1/5 = `_metrics`,
    /// GFLOPS = `_ops`, MB = `_file_size`), plus the legacy file names older torchvision and timm
    /// releases download (§2.4-2.5). Every file follows torch hub's naming: the hex after the last
    /// `-` is the start of the file's SHA-256, checked as torchvision does (`check_hash=True`).
    static let torchvisionEntries: [WeightEntry] = {
        // (enum, architecture, file, acc@1, acc@5, params, GFLOPS, MB, resize, default)
        typealias Row = (String, String, String, Double, Double, Int, Double, Double, Int, Bool)
        let rows: [Row] = [
            ("ResNet18_Weights.IMAGENET1K_V1", "resnet18", "resnet18-f37072fd.pth", 69.758, 89.078, 11_689_512, 1.814, 44.661, 256, true),
            ("ResNet34_Weights.IMAGENET1K_V1", "resnet34", "resnet34-b627a593.pth", 73.314, 91.420, 21_797_672, 3.664, 83.275, 256, true),
            ("ResNet50_Weights.IMAGENET1K_V1", "resnet50", "resnet50-0676ba61.pth", 76.130, 92.862, 25_557_032, 4.089, 97.781, 256, false),
            ("ResNet50_Weights.IMAGENET1K_V2", "resnet50", "resnet50-11ad3fa6.pth", 80.858, 95.434, 25_557_032, 4.089, 97.790, 232, true),
            (
                "ResNet101_Weights.IMAGENET1K_V1", "resnet101", "resnet101-63fe2227.pth", 77.374, 93.546, 44_549_160, 7.801, 170.511, 256,
                false
            ),
            (
                "ResNet101_Weights.IMAGENET1K_V2", "resnet101", "resnet101-cd907fc2.pth", 81.886, 95.780, 44_549_160, 7.801, 170.530, 232,
                true
            ),
            (
                "ResNet152_Weights.IMAGENET1K_V1", "resnet152", "resnet152-394f9c45.pth", 78.312, 94.046, 60_192_808, 11.514, 230.434, 256,
                false
            ),
            (
                "ResNet152_Weights.IMAGENET1K_V2", "resnet152", "resnet152-f82ba261.pth", 82.284, 96.002, 60_192_808, 11.514, 230.474, 232,
                true
            ),
            (
                "ResNeXt50_32X4D_Weights.IMAGENET1K_V1", "resnext50_32x4d", "resnext50_32x4d-7cdf4587.pth", 77.618, 93.698, 25_028_904,
                4.23, 95.789, 256, false
            ),
            (
                "ResNeXt50_32X4D_Weights.IMAGENET1K_V2", "resnext50_32x4d", "resnext50_32x4d-1a0047aa.pth", 81.198, 95.340, 25_028_904,
                4.23, 95.833, 232, true
            ),
            (
                "ResNeXt101_32X8D_Weights.IMAGENET1K_V1", "resnext101_32x8d", "resnext101_32x8d-8ba56ff5.pth", 79.312, 94.526, 88_791_336,
                16.414, 339.586, 256, false
            ),
            (
                "ResNeXt101_32X8D_Weights.IMAGENET1K_V2", "resnext101_32x8d", "resnext101_32x8d-110c445d.pth", 82.834, 96.228, 88_791_336,
                16.414, 339.673, 232, true
            ),
            (
                "ResNeXt101_64X4D_Weights.IMAGENET1K_V1", "resnext101_64x4d", "resnext101_64x4d-173b62eb.pth", 83.246, 96.454, 83_455_272,
                15.46, 319.318, 232, true
            ),
            (
                "Wide_ResNet50_2_Weights.IMAGENET1K_V1", "wide_resnet50_2", "wide_resnet50_2-95faca4d.pth", 78.468, 94.086, 68_883_240,
                11.398, 131.82, 256, false
            ),
            (
                "Wide_ResNet50_2_Weights.IMAGENET1K_V2", "wide_resnet50_2", "wide_resnet50_2-9ba9bcbe.pth", 81.602, 95.758, 68_883_240,
                11.398, 263.124, 232, true
            ),
            (
                "Wide_ResNet101_2_Weights.IMAGENET1K_V1", "wide_resnet101_2", "wide_resnet101_2-32ee1156.pth", 78.848, 94.284, 126_886_696,
                22.753, 242.896, 256, false
            ),
            (
                "Wide_ResNet101_2_Weights.IMAGENET1K_V2", "wide_resnet101_2", "wide_resnet101_2-d733dc28.pth", 82.510, 96.020, 126_886_696,
                22.753, 484.747, 232, true
            ),
            (
                "DenseNet121_Weights.IMAGENET1K_V1", "densenet121", "densenet121-a639ec97.pth", 74.434, 91.972, 7_978_856, 2.834, 30.845,
                256, true
            ),
            (
                "DenseNet161_Weights.IMAGENET1K_V1", "densenet161", "densenet161-8d451a50.pth", 77.138, 93.560, 28_681_000, 7.728, 110.369,
                256, true
            ),
            (
                "DenseNet169_Weights.IMAGENET1K_V1", "densenet169", "densenet169-b2777c0a.pth", 75.600, 92.806, 14_149_480, 3.36, 54.708,
                256, true
            ),
            (
                "DenseNet201_Weights.IMAGENET1K_V1", "densenet201", "densenet201-c1103571.pth", 76.896, 93.370, 20_013_928, 4.291, 77.373,
                256, true
            ),
        ]
        var out: [WeightEntry] = rows.map { r in
            let tag = String(r.0.split(separator: ".").last ?? "")
            let legacyFormat = r.1.hasPrefix("densenet")
            return WeightEntry(
                name: r.0, architecture: r.1, tag: tag, origin: .torchvision, url: "https://download.pytorch.org/models/" + r.2,
                integrity: IntegrityRule.fromTorchHubFileName(r.2), fileMegabytes: r.7, parameterCount: r.5, gflops: r.6,
                top1: r.3, top5: r.4, preprocessing: .imageClassification(cropSize: 224, resizeSize: r.8), isDefault: r.9,
                notes: legacyFormat
                    ? "released 2017 and never re-uploaded: pre-1.6 (non-zip) format with the old norm.1/conv.1 key names"
                    : (tag == "IMAGENET1K_V1" && r.1.hasPrefix("resnet") && !r.1.hasPrefix("resnext")
                        ? "re-serialized in the zip format (pytorch/vision PR #3620); the same weights as the legacy file" : ""))
        }
        // Legacy file names (older torchvision and timm releases). The ResNet files hold the same
        // weights as IMAGENET1K_V1 in the tar format (FORMATS.md §2.5); the DenseNet files are the
        // first 2017 release, whose metrics torchvision no longer publishes.
        let legacy: [(String, String, String?)] = [
            ("resnet18", "resnet18-5c106cde.pth", "ResNet18_Weights.IMAGENET1K_V1"),
            ("resnet34", "resnet34-333f7ec4.pth", "ResNet34_Weights.IMAGENET1K_V1"),
            ("resnet50", "resnet50-19c8e357.pth", "ResNet50_Weights.IMAGENET1K_V1"),
            ("resnet101", "resnet101-5d3b4d8f.pth", "ResNet101_Weights.IMAGENET1K_V1"),
            ("resnet152", "resnet152-b121ed2d.pth", "ResNet152_Weights.IMAGENET1K_V1"),
            ("densenet121", "densenet121-241335ed.pth", nil),
            ("densenet161", "densenet161-17b70270.pth", nil),
            ("densenet169", "densenet169-6f0f7f60.pth", nil),
            ("densenet201", "densenet201-4c113574.pth", nil),
        ]
        for (arch, file, same) in legacy {
            let twin = same.flatMap { s in out.first { $0.name == s } }
            out.append(
                WeightEntry(
                    name: "\(arch).legacy", architecture: arch, tag: "LEGACY", origin: .torchvision,
                    url: "https://download.pytorch.org/models/" + file, integrity: IntegrityRule.fromTorchHubFileName(file),
                    fileMegabytes: nil, parameterCount: twin?.parameterCount, gflops: twin?.gflops, top1: twin?.top1, top5: twin?.top5,
                    preprocessing: .imageClassification(cropSize: 224, resizeSize: 256),
                    notes: twin != nil
                        ? "legacy tar-format file of \(twin!.name) (same weights)"
                        : "first torchvision DenseNet release (2017, legacy format); no published metrics"))
        }
        return out
    }()
}
