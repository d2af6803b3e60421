import VisionData

extension WeightRegistry {
    /// `keras.applications` ImageNet weights (FORMATS.md §4.3-4.4; file hashes from
    /// keras-team/keras `keras/src/applications/resnet.py` `WEIGHTS_HASHES` and `densenet.py`; the
    /// old ResNet50 file from keras-applications 1.0.8 `resnet50.py`). Accuracy and sizes: the
    /// keras.io applications table. Parameters: Keras' `count_params()` (weights + BN moving
    /// statistics + ResNet conv biases), recomputed on torchvision's models plus those; GFLOPS
    /// counted the same way as torchvision's (ResNet v1: the stride on the first 1x1).
    ///
    /// Keras' loader checks the MD5 of the file; so does the resolver. The two ResNet50 files share a
    /// name (`resnet50_weights_tf_dim_ordering_tf_kernels.h5`); their MD5 tells them apart.
    static let kerasEntries: [WeightEntry] = {
        let base = "https://storage.googleapis.com/tensorflow/keras-applications/"
        // (function, Swift architecture, folder, stem, md5 top, md5 notop, params top, params notop, GFLOPS, acc@1, acc@5, MB, caffe)
        typealias Row = (String, String, String, String, String, String, Int, Int, Double, Double, Double, Double, Bool)
        let rows: [Row] = [
            (
                "ResNet50", "keras_resnet50", "resnet", "resnet50", "2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626",
                25_636_712, 23_587_712, 3.858, 74.9, 92.1, 98, true
            ),
            (
                "ResNet101", "keras_resnet101", "resnet", "resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5",
                "88cf7a10940856eca736dc7b7e228a21",
                44_707_176, 42_658_176, 7.570, 76.4, 92.8, 171, true
            ),
            (
                "ResNet152", "keras_resnet152", "resnet", "resnet152", "100835be76be38e30d865e96f2aaae62",
                "ee4c566cf9a93f14d82f913c2dc6dd0c",
                60_419_944, 58_370_944, 11.282, 76.6, 93.1, 232, true
            ),
            (
                "DenseNet121", "keras_densenet121", "densenet", "densenet121", "9d60b8095a5708f2dcce2bca79d332c7",
                "30ee3e1110167f948a6b9946edeeb738",
                8_062_504, 7_037_504, 2.834, 75.0, 92.3, 33, false
            ),
            (
                "DenseNet169", "keras_densenet169", "densenet", "densenet169", "d699b8f76981ab1b30698df4c175e90b",
                "b8c4d4c20dd625c148057b9ff1c1176b",
                14_307_880, 12_642_880, 3.360, 76.2, 93.2, 57, false
            ),
            (
                "DenseNet201", "keras_densenet201", "densenet", "densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807",
                "c13680b51ded0fb44dff2d8f86ac8bb1",
                20_242_984, 18_321_984, 4.291, 77.3, 93.6, 80, false
            ),
        ]
        var out: [WeightEntry] = []
        for r in rows {
            let preprocessing: Preprocessing = r.12 ? .kerasCaffe() : .kerasTorch()
            let notes =
                r.12
                ? "Keras ResNet v1: stride on the first 1x1, conv biases, BN eps 1.001e-5, caffe preprocessing (BGR, mean subtracted)"
                : "Keras DenseNet: a 1:1 rename of torchvision's DenseNet, BN eps 1.001e-5, torch preprocessing"
            out.append(
                WeightEntry(
                    name: "keras.\(r.0)", architecture: r.1, tag: "imagenet", origin: .keras,
                    url: "\(base)\(r.2)/\(r.3)_weights_tf_dim_ordering_tf_kernels.h5", integrity: .md5(r.4),
                    fileMegabytes: r.11, parameterCount: r.6, gflops: r.8, top1: r.9, top5: r.10, preprocessing: preprocessing,
                    isDefault: true, notes: notes))
            out.append(
                WeightEntry(
                    name: "keras.\(r.0).notop", architecture: r.1, tag: "imagenet_notop", origin: .keras,
                    url: "\(base)\(r.2)/\(r.3)_weights_tf_dim_ordering_tf_kernels_notop.h5", integrity: .md5(r.5),
                    fileMegabytes: nil, parameterCount: r.7, gflops: nil, top1: nil, top5: nil, preprocessing: preprocessing,
                    categories: .none, notes: notes + "; no classifier (include_top=False)"))
        }
        // The ResNet50 file of Keras <= 2.2.4 (keras-applications resnet50.py): Caffe layer names
        // (conv1, bn_conv1, res2a_branch2a, fc1000) and BN epsilon 1e-3; same file name as above.
        let old = "https://github.com/fchollet/deep-learning-models/releases/download/v0.2/"
        out.append(
            WeightEntry(
                name: "keras.ResNet50.v0_2", architecture: "keras_resnet50_caffe", tag: "imagenet_v0.2", origin: .keras,
                url: old + "resnet50_weights_tf_dim_ordering_tf_kernels.h5", integrity: .md5("a7b3fe01876f51b976af0dea6bc144eb"),
                fileMegabytes: nil, parameterCount: 25_636_712, gflops: 3.858, top1: nil, top5: nil, preprocessing: .kerasCaffe(),
                notes: "Keras <= 2.2.4 ResNet50 (Caffe layer names, BN eps 1e-3); shares its file name with keras.ResNet50"))
        out.append(
            WeightEntry(
                name: "keras.ResNet50.v0_2.notop", architecture: "keras_resnet50_caffe", tag: "imagenet_v0.2_notop", origin: .keras,
                url: old + "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", integrity: .md5("a268eb855778b3df3c7506639542a6af"),
                fileMegabytes: nil, parameterCount: 23_587_712, gflops: nil, top1: nil, top5: nil, preprocessing: .kerasCaffe(),
                categories: .none, notes: "Keras <= 2.2.4 ResNet50 without its classifier"))
        return out
    }()
}
