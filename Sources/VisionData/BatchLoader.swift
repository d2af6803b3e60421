import NeuralNet

/// Batches of a data set, like `torch.utils.data.DataLoader(dataset, batch_size, shuffle, drop_last)`
/// with the data set's transform given as a `Preprocessing`.
///
/// Shuffling is a seeded Fisher-Yates permutation, reshuffled every epoch (the epoch number is mixed
/// into the seed): the same seed gives the same batches on every machine and every run. The order
/// is not torch's (whose generator is not reproduced), only as uniformly random.
///
/// ```swift
/// let train = try CIFAR10(root: "data", split: .train)
/// let loader = try BatchLoader(train, batchSize: 64, shuffle: true, seed: 0,
///                              preprocessing: .toTensorNormalize(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]))
/// for batch in loader.epoch(0) { /* batch.images: [64, 3, 32, 32], batch.labels: [Int] */ }
/// ```
public struct BatchLoader<Dataset: ImageDataset>: Sendable {
    /// One batch.
    public struct Batch: Sendable {
        /// `[B, 3, H, W]` float32 model input.
        public let images: Tensor
        /// The labels, in batch order.
        public let labels: [Int]
        /// The data set indices of the examples, in batch order.
        public let indices: [Int]
    }

    /// The data set.
    public let dataset: Dataset
    /// Examples per batch.
    public let batchSize: Int
    /// Whether each epoch visits the examples in a fresh random order.
    public let shuffle: Bool
    /// The shuffling seed.
    public let seed: UInt64
    /// Whether a last, smaller batch is dropped.
    public let dropLast: Bool
    /// The transform applied to each image.
    public let preprocessing: Preprocessing

    /// Creates a loader; throws if `batchSize` is not positive or `preprocessing` is invalid or does
    /// not give every image the same size (a resize without a crop, on images of different sizes).
    public init(
        _ dataset: Dataset, batchSize: Int, shuffle: Bool = false, seed: UInt64 = 0, dropLast: Bool = false,
        preprocessing: Preprocessing
    ) throws(VisionDataError) {
        guard batchSize > 0 else { throw VisionDataError(.invalidArgument, "batch size must be positive, got \(batchSize)") }
        try preprocessing.validate()
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.preprocessing = preprocessing
    }

    /// Batches per epoch.
    public var batchCount: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The example order of `epoch`: the identity, or a seeded permutation.
    public func order(epoch: Int) -> [Int] {
        var indices = Array(0..<dataset.count)
        guard shuffle, indices.count > 1 else { return indices }
        var rng = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
        for i in stride(from: indices.count - 1, to: 0, by: -1) {
            let j = Int(rng.next(below: UInt64(i + 1)))
            indices.swapAt(i, j)
        }
        return indices
    }

    /// The batches of `epoch`, computed lazily as they are iterated.
    public func epoch(_ epoch: Int) -> Epoch { Epoch(loader: self, order: order(epoch: epoch)) }

    /// Builds the batch of the given data set indices.
    public func batch(indices: [Int]) throws(VisionDataError) -> Batch {
        var images: [RGBImage] = []
        var labels: [Int] = []
        images.reserveCapacity(indices.count)
        for i in indices {
            guard i >= 0, i < dataset.count else {
                throw VisionDataError(.invalidArgument, "index \(i) is outside the data set (0..<\(dataset.count))")
            }
            let e = dataset.example(at: i)
            images.append(e.image)
            labels.append(e.label)
        }
        return Batch(images: try preprocessing.batch(images), labels: labels, indices: indices)
    }

    /// One epoch's batches: a sequence whose elements are `Result`s, as building a batch can fail
    /// (images of different sizes without a crop).
    public struct Epoch: Sequence, Sendable {
        let loader: BatchLoader
        let order: [Int]

        /// Builds the batches one by one, in the epoch's order.
        public struct Iterator: IteratorProtocol {
            let loader: BatchLoader
            let order: [Int]
            var position = 0

            /// The next batch, or nil after the last (or before a dropped, incomplete last batch).
            public mutating func next() -> Result<Batch, VisionDataError>? {
                let remaining = order.count - position
                guard remaining > 0, !(loader.dropLast && remaining < loader.batchSize) else { return nil }
                let n = Swift.min(loader.batchSize, remaining)
                let indices = Array(order[position..<(position + n)])
                position += n
                do throws(VisionDataError) {
                    return .success(try loader.batch(indices: indices))
                } catch {
                    return .failure(error)
                }
            }
        }

        /// An iterator from the epoch's first batch.
        public func makeIterator() -> Iterator { Iterator(loader: loader, order: order) }
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64), so shuffles are
/// reproducible across platforms.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Starts the sequence at `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in `0 ..< bound` (rejection sampling, no modulo bias); 0 when bound is 0.
    public mutating func next(below bound: UInt64) -> UInt64 {
        guard bound > 0 else { return 0 }
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let v = next()
            if v < limit { return v % bound }
        }
    }
}
