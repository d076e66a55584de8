public import ComfyGatePolicy

/// The largest image a prompt asks ComfyUI's built-in size nodes for, so a quota can bound it before the GPU
/// spends any time on it.
public struct ImageArea: Sendable, Equatable {
    /// The node that asks for it.
    public var nodeID: String
    public var classType: String
    /// Width × height in pixels (one frame, one batch item).
    public var pixels: Int

    public init(nodeID: String, classType: String, pixels: Int) {
        self.nodeID = nodeID
        self.classType = classType
        self.pixels = pixels
    }

    /// Built-in nodes that take a `width` and a `height` in pixels for what they create.
    public static let sizedNodes: Set<String> = [
        "EmptyImage", "EmptyLatentImage", "EmptySD3LatentImage", "EmptyHunyuanLatentVideo", "EmptyMochiLatentVideo",
        "EmptyLTXVLatentVideo", "EmptyCosmosLatentVideo", "EmptyHunyuanImageLatent", "EmptyChromaRadianceLatentImage",
    ]

    /// The largest area any built-in size node of `prompt` asks for; nil when none gives its size as numbers (a
    /// size fed by a link is known only when ComfyUI runs). `ImageScaleToTotalPixels` counts by its `megapixels`
    /// (one megapixel = 1024 × 1024, as ComfyUI scales).
    public static func largest(in prompt: PolicyJSON) -> ImageArea? {
        var largest: ImageArea?
        for node in prompt.members ?? [] {
            guard let classType = node.value["class_type"]?.stringValue, let inputs = node.value["inputs"] else { continue }
            let pixels: Int?
            if sizedNodes.contains(classType) {
                pixels = number(inputs["width"]).flatMap { width in number(inputs["height"]).map { width * $0 } }
            } else if classType == "ImageScaleToTotalPixels", let megapixels = inputs["megapixels"].flatMap(Self.decimal) {
                pixels = megapixels.isFinite && megapixels > 0 ? Int(min(megapixels, 1e9) * 1024 * 1024) : nil
            } else {
                pixels = nil
            }
            guard let pixels, pixels > (largest?.pixels ?? 0) else { continue }
            largest = ImageArea(nodeID: node.key, classType: classType, pixels: pixels)
        }
        return largest
    }

    /// A size as ComfyUI reads an `INT` input (`int(value)`): a number, its fraction dropped, or a string of an
    /// integer; links and other values are not sizes. Bounded so that a product cannot overflow.
    private static func number(_ value: PolicyJSON?) -> Int? {
        let size: Double? =
            switch value {
            case .number(let literal)?: Double(literal)
            case .string(let text)?: Int(trimmed(text)).map(Double.init)
            default: nil
            }
        guard let size, size.isFinite else { return nil }
        return Int(max(0, min(size, Double(1 << 24))))
    }

    /// A `FLOAT` input as ComfyUI reads it (`float(value)`).
    private static func decimal(_ value: PolicyJSON) -> Double? {
        switch value {
        case .number(let literal): Double(literal)
        case .string(let text): Double(trimmed(text))
        default: nil
        }
    }

    private static func trimmed(_ text: String) -> String {
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
