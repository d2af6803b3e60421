/// A labelled image data set held in memory: what `BatchLoader` draws from.
public protocol ImageDataset: Sendable {
    /// Number of examples.
    var count: Int { get }
    /// Class names, indexed by label.
    var classNames: [String] { get }
    /// The image and label of example `index` (0 ..< count).
    func example(at index: Int) -> (image: RGBImage, label: Int)
}
