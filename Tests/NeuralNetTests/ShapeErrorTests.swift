import NeuralNet
import Testing

/// Bad shapes and parameters throw `NeuralNetError` naming the op and the shapes; nothing traps.
@Suite("Shape and parameter errors")
struct ShapeErrorTests {
    /// Runs `body`, expects a `NeuralNetError`, and checks its message mentions every fragment.
    func expectError(
        _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> Void
    ) {
        do {
            try body()
            Issue.record("expected a NeuralNetError mentioning \(fragments)", sourceLocation: sourceLocation)
        } catch let error as NeuralNetError {
            for f in fragments {
                #expect(error.message.contains(f), "'\(error.message)' lacks '\(f)'", sourceLocation: sourceLocation)
            }
            #expect(error.description.hasPrefix("error: "), sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected a NeuralNetError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    func conv3x3(_ inC: Int, _ outC: Int, groups: Int = 1) throws -> Conv2d {
        let config = Conv2dConfig(inChannels: inC, outChannels: outC, kernel: 3, padding: 1, groups: groups)
        return try Conv2d(config: config, weight: [Float](repeating: 0.1, count: outC * inC / groups * 9), bias: nil)
    }

    @Test("conv2d: wrong channel count, wrong rank, empty output")
    func convInput() throws {
        let conv = try conv3x3(4, 8)
        expectError(["conv2d", "[N, 4, H, W]", "[1, 3, 8, 8]"]) { _ = try conv(Tensor(zeros: [1, 3, 8, 8])) }
        expectError(["conv2d", "[4, 8, 8]"]) { _ = try conv(Tensor(zeros: [4, 8, 8])) }
        let big = try Conv2d(
            config: Conv2dConfig(inChannels: 1, outChannels: 1, kernel: 5), weight: [Float](repeating: 0, count: 25),
            bias: nil)
        expectError(["conv2d", "4x4"]) { _ = try big(Tensor(zeros: [1, 1, 4, 4])) }
        expectError(["conv2d", "0x4"]) { _ = try conv(Tensor(zeros: [1, 4, 0, 4])) }
    }

    @Test("conv2d: bad weights, bias, groups and geometry are refused at construction")
    func convConstruction() {
        let config = Conv2dConfig(inChannels: 4, outChannels: 8, kernel: 3)
        expectError(["conv2d", "[8, 4, 3, 3]", "288", "10"]) {
            _ = try Conv2d(config: config, weight: [Float](repeating: 0, count: 10), bias: nil)
        }
        expectError(["bias", "8", "3"]) {
            _ = try Conv2d(config: config, weight: [Float](repeating: 0, count: 288), bias: [1, 2, 3])
        }
        expectError(["groups 3"]) {
            _ = try Conv2d(
                config: Conv2dConfig(inChannels: 4, outChannels: 8, kernel: 3, groups: 3), weight: [], bias: nil)
        }
        for bad in [
            Conv2dConfig(inChannels: 4, outChannels: 8, kernel: 0),
            Conv2dConfig(inChannels: 4, outChannels: 8, kernel: 3, stride: 0),
            Conv2dConfig(inChannels: 4, outChannels: 8, kernel: 3, padding: -1),
            Conv2dConfig(inChannels: 4, outChannels: 8, kernel: 3, dilation: 0),
            Conv2dConfig(inChannels: 0, outChannels: 8, kernel: 3),
        ] {
            expectError(["conv2d"]) { _ = try Conv2d(config: bad, weight: [], bias: nil) }
            expectError(["conv2d"]) { _ = try bad.outputSize(h: 8, w: 8) }
        }
    }

    @Test("conv2d: output size follows PyTorch's formula")
    func convOutputSize() throws {
        let stem = Conv2dConfig(inChannels: 3, outChannels: 64, kernel: 7, stride: 2, padding: 3)
        #expect(try stem.outputSize(h: 224, w: 224) == (112, 112))
        #expect(try stem.outputSize(h: 193, w: 257) == (97, 129))
        let dilated = Conv2dConfig(inChannels: 1, outChannels: 1, kernel: 3, padding: 2, dilation: 2)
        #expect(try dilated.outputSize(h: 17, w: 13) == (17, 13))
    }

    @Test("folding: batch norm with the wrong channel count")
    func folding() throws {
        let conv = try conv3x3(4, 8)
        let bn = try BatchNorm2d(weight: [1, 1], bias: [0, 0], runningMean: [0, 0], runningVar: [1, 1])
        expectError(["folding", "2 channels", "8 output channels"]) { _ = try conv.folding(bn) }
    }

    @Test("batch norm: mismatched vectors, bad variance, wrong input")
    func batchNorm() throws {
        expectError(["batchnorm2d", "3, 2, 3, 3"]) {
            _ = try BatchNorm2d(weight: [1, 1, 1], bias: [0, 0], runningMean: [0, 0, 0], runningVar: [1, 1, 1])
        }
        expectError(["running_var[1]"]) {
            _ = try BatchNorm2d(weight: [1, 1], bias: [0, 0], runningMean: [0, 0], runningVar: [1, -1])
        }
        let bn = try BatchNorm2d(weight: [1, 1], bias: [0, 0], runningMean: [0, 0], runningVar: [1, 1])
        expectError(["batchnorm2d", "[N, 2, H, W]", "[1, 3, 2, 2]"]) { _ = try bn(Tensor(zeros: [1, 3, 2, 2])) }
    }

    @Test("linear: wrong features, wrong rank, bad weights")
    func linear() throws {
        let layer = try Linear(weight: [Float](repeating: 1, count: 6), bias: [0, 0], inFeatures: 3, outFeatures: 2)
        expectError(["linear", "[N, 3]", "[1, 4]"]) { _ = try layer(Tensor(zeros: [1, 4])) }
        expectError(["linear", "[1, 3, 1, 1]"]) { _ = try layer(Tensor(zeros: [1, 3, 1, 1])) }
        expectError(["linear", "[2, 3]", "5"]) { _ = try Linear(weight: [1, 2, 3, 4, 5], bias: nil, inFeatures: 3, outFeatures: 2) }
        #expect(try layer(Tensor(shape: [1, 3], data: [1, 2, 3])).data == [6, 6])
    }

    @Test("add, concat, scaleChannels: mismatched shapes")
    func elementwise() {
        expectError(["add", "[1, 2, 3, 3]", "[1, 2, 3, 4]"]) {
            _ = try Ops.add(Tensor(zeros: [1, 2, 3, 3]), Tensor(zeros: [1, 2, 3, 4]))
        }
        expectError(["concatChannels", "tensor 1", "[1, 2, 4, 4]"]) {
            _ = try Ops.concatChannels([Tensor(zeros: [1, 2, 3, 4]), Tensor(zeros: [1, 2, 4, 4])])
        }
        expectError(["concatChannels", "no tensors"]) { _ = try Ops.concatChannels([]) }
        expectError(["scaleChannels", "[1, 2, 1, 1]", "[1, 3, 1, 1]"]) {
            _ = try Ops.scaleChannels(Tensor(zeros: [1, 2, 3, 3]), by: Tensor(zeros: [1, 3, 1, 1]))
        }
    }

    @Test("pools: output smaller than 1, padding over half the kernel, bad kernel or stride")
    func pools() {
        let x = Tensor(zeros: [1, 1, 2, 2])
        expectError(["maxPool2d", "smaller than the kernel"]) { _ = try Ops.maxPool2d(x, kernel: 3, stride: 2) }
        expectError(["avgPool2d", "smaller than the kernel"]) { _ = try Ops.avgPool2d(x, kernel: 3, stride: 1) }
        expectError(["maxPool2d", "padding"]) { _ = try Ops.maxPool2d(x, kernel: 3, stride: 1, padding: 2) }
        expectError(["avgPool2d", "padding"]) { _ = try Ops.avgPool2d(x, kernel: 2, stride: 1, padding: -1) }
        expectError(["maxPool2d", "stride"]) { _ = try Ops.maxPool2d(x, kernel: 2, stride: 0) }
        expectError(["adaptiveAvgPool2d", "0x1"]) { _ = try Ops.adaptiveAvgPool2d(x, outputH: 0, outputW: 1) }
        expectError(["adaptiveAvgPool2d", "[1, 1, 0, 2]"]) {
            _ = try Ops.adaptiveAvgPool2d(Tensor(zeros: [1, 1, 0, 2]), outputH: 1, outputW: 1)
        }
        expectError(["maxPool2d", "[2, 2]"]) { _ = try Ops.maxPool2d(Tensor(zeros: [2, 2]), kernel: 1, stride: 1) }
    }

    @Test("tensor: storage must match the shape")
    func tensor() throws {
        expectError(["tensor", "[2, 3]", "6", "5"]) { _ = try Tensor(shape: [2, 3], data: [0, 0, 0, 0, 0]) }
        expectError(["negative"]) { _ = try Tensor(shape: [-1, 3], data: []) }
        expectError(["reshape"]) {
            var t = Tensor(zeros: [2, 2])
            t.data.append(1)
            _ = try t.reshaped([5])
        }
        // A tensor whose data was resized behind the shape's back is refused, not read out of bounds.
        var broken = Tensor(zeros: [1, 2, 2, 2])
        broken.data.removeLast()
        let conv = try conv3x3(2, 2)
        expectError(["conv2d", "holds 7 elements"]) { _ = try conv(broken) }
        expectError(["add"]) { _ = try Ops.add(broken, broken) }
        #expect(Tensor(zeros: [2, 3]).count == 6)
        #expect(try Tensor(shape: [], data: [4]).count == 1)
    }
}
