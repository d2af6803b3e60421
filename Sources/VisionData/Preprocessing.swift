import NeuralNet

/// What a set of weights expects its input to look like: how to resize and crop an image, the value
/// range, the channel order and the per-channel normalisation. `apply` turns an `RGBImage` into the
/// float32 `[1, 3, H, W]` tensor a model takes.
///
/// The presets reproduce the reference pipelines exactly (see the golden tests for the bound):
/// - `imageClassification(...)`: torchvision's `ImageClassification` preset (`weights.transforms()`):
///   resize the shorter side (antialiased bilinear, or bicubic), center crop, scale to [0, 1],
///   normalise with the ImageNet mean and std, RGB.
/// - `kerasCaffe`: `keras.utils.load_img(path, target_size=(224, 224))` (nearest) followed by
///   `keras.applications.resnet.preprocess_input` (mode "caffe": BGR, 0...255, minus the BGR mean).
/// - `kerasTorch`: the same loading, then mode "torch" (DenseNet): /255, ImageNet mean and std, RGB.
/// - `toTensorNormalize(mean:std:)`: torchvision's `ToTensor()` + `Normalize(mean, std)` (CIFAR-10).
public struct Preprocessing: Sendable, Equatable, Codable, CustomStringConvertible {
    /// How the image is resized before cropping.
    public enum Resize: Sendable, Equatable, Codable {
        /// No resizing.
        case none
        /// The shorter side becomes this many pixels, the aspect ratio is kept (torchvision `Resize(int)`).
        case shorterSide(Int)
        /// Exactly this size, aspect ratio not kept (PIL `resize((w, h))`, Keras `target_size`).
        case exact(width: Int, height: Int)
    }

    /// Channel order of the output tensor.
    public enum ChannelOrder: String, Sendable, Equatable, Codable {
        /// Red, green, blue planes (torchvision, Keras torch mode).
        case rgb
        /// Blue, green, red planes (Keras caffe mode, Caffe models).
        case bgr
    }

    /// A short name for display, e.g. `torchvision ImageClassification(resize=232, crop=224, bilinear)`.
    public var name: String
    /// How the image is resized.
    public var resize: Resize
    /// The resampling filter for `resize`.
    public var interpolation: Interpolation
    /// The center crop `(width, height)` after resizing, if any.
    public var crop: CropSize?
    /// Channel order of the output.
    public var channelOrder: ChannelOrder
    /// Pixel values are divided by this first (255 gives the [0, 1] range); nil keeps 0...255.
    public var divisor: Float?
    /// Subtracted per output channel (in `channelOrder`), after the division.
    public var mean: [Float]
    /// Divides per output channel after subtracting the mean.
    public var std: [Float]

    /// A crop size.
    public struct CropSize: Sendable, Equatable, Codable {
        /// Width in pixels.
        public var width: Int
        /// Height in pixels.
        public var height: Int
        /// Creates a crop size.
        public init(width: Int, height: Int) {
            self.width = width
            self.height = height
        }
    }

    /// The ImageNet channel means torchvision normalises with (RGB).
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    /// The ImageNet channel standard deviations torchvision normalises with (RGB).
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// Creates a preprocessing description; `validate()` checks it.
    public init(
        name: String, resize: Resize, interpolation: Interpolation = .bilinear, crop: CropSize?,
        channelOrder: ChannelOrder = .rgb, divisor: Float?, mean: [Float], std: [Float]
    ) {
        self.name = name
        self.resize = resize
        self.interpolation = interpolation
        self.crop = crop
        self.channelOrder = channelOrder
        self.divisor = divisor
        self.mean = mean
        self.std = std
    }

    /// torchvision's `ImageClassification(crop_size, resize_size, interpolation)` preset.
    public static func imageClassification(
        cropSize: Int = 224, resizeSize: Int = 256, interpolation: Interpolation = .bilinear,
        mean: [Float] = imagenetMean, std: [Float] = imagenetStd
    ) -> Preprocessing {
        Preprocessing(
            name: "torchvision ImageClassification(crop_size=\(cropSize), resize_size=\(resizeSize), \(interpolation.rawValue))",
            resize: .shorterSide(resizeSize), interpolation: interpolation, crop: CropSize(width: cropSize, height: cropSize),
            channelOrder: .rgb, divisor: 255, mean: mean, std: std)
    }

    /// Keras applications' ResNet preprocessing (mode "caffe") after `load_img(target_size=(size, size))`.
    public static func kerasCaffe(size: Int = 224) -> Preprocessing {
        Preprocessing(
            name: "keras load_img(target_size=(\(size), \(size)), nearest) + preprocess_input(mode='caffe')",
            resize: .exact(width: size, height: size), interpolation: .nearest, crop: nil, channelOrder: .bgr, divisor: nil,
            mean: [103.939, 116.779, 123.68], std: [1, 1, 1])
    }

    /// Keras applications' DenseNet preprocessing (mode "torch") after `load_img(target_size=(size, size))`.
    public static func kerasTorch(size: Int = 224) -> Preprocessing {
        Preprocessing(
            name: "keras load_img(target_size=(\(size), \(size)), nearest) + preprocess_input(mode='torch')",
            resize: .exact(width: size, height: size), interpolation: .nearest, crop: nil, channelOrder: .rgb, divisor: 255,
            mean: imagenetMean, std: imagenetStd)
    }

    /// torchvision's `ToTensor()` followed by `Normalize(mean, std)`, without resizing.
    public static func toTensorNormalize(mean: [Float], std: [Float]) -> Preprocessing {
        Preprocessing(name: "ToTensor + Normalize(mean=\(mean), std=\(std))", resize: .none, crop: nil, divisor: 255, mean: mean, std: std)
    }

    /// The display name.
    public var description: String { name }

    /// The [low, high] range of the values before normalisation.
    public var valueRange: ClosedRange<Float> { divisor.map { 0...(255 / $0) } ?? 0...255 }

    /// Throws unless sizes are positive, `mean` and `std` have three entries and no std is zero.
    public func validate() throws(VisionDataError) {
        switch resize {
        case .none: break
        case .shorterSide(let s):
            guard s > 0 else { throw VisionDataError(.invalidArgument, "\(name): resize size \(s) must be positive") }
        case .exact(let w, let h):
            guard w > 0, h > 0 else { throw VisionDataError(.invalidArgument, "\(name): resize size \(w)x\(h) must be positive") }
        }
        if let crop, crop.width <= 0 || crop.height <= 0 {
            throw VisionDataError(.invalidArgument, "\(name): crop size \(crop.width)x\(crop.height) must be positive")
        }
        guard mean.count == 3, std.count == 3 else {
            throw VisionDataError(.invalidArgument, "\(name): mean and std need 3 values each, got \(mean.count) and \(std.count)")
        }
        guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw VisionDataError(.invalidArgument, "\(name): std must be finite and non-zero, mean finite (std \(std))")
        }
        if let divisor, divisor == 0 || !divisor.isFinite {
            throw VisionDataError(.invalidArgument, "\(name): divisor must be finite and non-zero")
        }
    }

    /// The resized and cropped image, before conversion to floats.
    public func geometry(_ image: RGBImage) throws(VisionDataError) -> RGBImage {
        try validate()
        return try geometryValidated(image)
    }

    func geometryValidated(_ image: RGBImage) throws(VisionDataError) -> RGBImage {
        var out = image
        switch resize {
        case .none: break
        case .shorterSide(let s): out = try out.resized(shorterSide: s, interpolation: interpolation)
        case .exact(let w, let h): out = try out.resized(width: w, height: h, interpolation: interpolation)
        }
        if let crop { out = try out.centerCropped(width: crop.width, height: crop.height) }
        return out
    }

    /// The model input for one image: a `[1, 3, H, W]` float32 tensor.
    public func apply(_ image: RGBImage) throws(VisionDataError) -> Tensor {
        try batch([image])
    }

    /// The model input for several images of the same output size: `[N, 3, H, W]`.
    public func batch(_ images: [RGBImage]) throws(VisionDataError) -> Tensor {
        try validate()
        var prepared: [RGBImage] = []
        prepared.reserveCapacity(images.count)
        for image in images { prepared.append(try geometryValidated(image)) }
        guard let first = prepared.first else {
            throw VisionDataError(.invalidArgument, "\(name): no images to batch")
        }
        for (i, p) in prepared.enumerated() where p.width != first.width || p.height != first.height {
            throw VisionDataError(
                .invalidArgument,
                "\(name): image \(i) is \(p.width)x\(p.height) after preprocessing, image 0 is \(first.width)x\(first.height); add a crop")
        }
        let plane = first.width * first.height
        var data = [Float](repeating: 0, count: prepared.count * 3 * plane)
        for (i, p) in prepared.enumerated() { write(p, into: &data, at: i * 3 * plane) }
        do throws(NeuralNetError) {
            return try Tensor(shape: [prepared.count, 3, first.height, first.width], data: data)
        } catch {
            throw VisionDataError(.invalidArgument, "\(name): \(error)")
        }
    }

    /// Writes one image's planes (CHW, `channelOrder`) at `offset`, scaled and normalised, with the
    /// reference's float32 operation order: `(Float(v) / divisor - mean) / std`.
    func write(_ image: RGBImage, into data: inout [Float], at offset: Int) {
        let plane = image.width * image.height
        data.withUnsafeMutableBufferPointer { out in
            image.pixels.withUnsafeBufferPointer { px in
                for c in 0..<3 {
                    let source = channelOrder == .rgb ? c : 2 - c
                    let m = mean[c], s = std[c]
                    let base = offset + c * plane
                    if let divisor {
                        for i in 0..<plane { out[base + i] = (Float(px[3 * i + source]) / divisor - m) / s }
                    } else {
                        for i in 0..<plane { out[base + i] = (Float(px[3 * i + source]) - m) / s }
                    }
                }
            }
        }
    }
}
