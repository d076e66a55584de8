import Foundation

/// What the gallery shows of a job's graph (ComfyUI's API format): the prompt text and the main parameters.
struct WorkflowFacts {
    /// The longest text given to a text encoder: the positive prompt, in the usual graphs.
    var prompt: String?
    /// `seed 7 · 20 steps · cfg 2.5 · euler · 1328×1328`, from the samplers and the latent image.
    var parameters: String?

    init(workflow: String) {
        guard let graph = (try? JSONSerialization.jsonObject(with: Data(workflow.utf8))) as? [String: Any] else { return }
        var texts: [String] = []
        var parts: [String] = []
        for id in graph.keys.sorted(by: { (Int($0) ?? .max, $0) < (Int($1) ?? .max, $1) }) {
            guard let node = graph[id] as? [String: Any], let type = node["class_type"] as? String,
                let inputs = node["inputs"] as? [String: Any]
            else { continue }
            if type.contains("TextEncode") {
                texts += ["text", "prompt"].compactMap { inputs[$0] as? String }.filter { !$0.isEmpty }
            }
            if type.hasPrefix("KSampler") {
                if let seed = Self.number(inputs["seed"] ?? inputs["noise_seed"]) { parts.append("seed \(seed)") }
                if let steps = Self.number(inputs["steps"]) { parts.append("\(steps) steps") }
                if let cfg = Self.number(inputs["cfg"]) { parts.append("cfg \(cfg)") }
                if let sampler = inputs["sampler_name"] as? String { parts.append(sampler) }
            }
            if type.hasPrefix("Empty"), let width = Self.number(inputs["width"]), let height = Self.number(inputs["height"]) {
                parts.append("\(width)×\(height)")
            }
        }
        prompt = texts.max { $0.count < $1.count }
        parameters = parts.isEmpty ? nil : parts.joined(separator: " · ")
    }

    /// A number input as text (whole numbers without a fraction); nil for a link to another node.
    private static func number(_ value: Any?) -> String? {
        guard let number = value as? NSNumber, !(value is [Any]) else { return nil }
        let double = number.doubleValue
        return double == double.rounded() && abs(double) < 1e15 ? String(Int64(double)) : String(double)
    }
}
