import ComfyGateTOML
import Foundation

/// `--config FILE`: a small TOML file naming what the deployment must have.
///
/// ```toml
/// workflow = "qwen-image-edit-fp8"   # a built-in list: qwen-image-fp8, qwen-image-edit-fp8
/// secrets_manifest = "comfygate-secrets.toml"   # checked like `comfygate secrets check` (relative to this file)
/// [models]                           # more required files, by ComfyUI model folder
/// loras = ["Qwen-Image-Lightning-4steps-V1.0.safetensors"]
/// ```
public struct DoctorConfigurationFile: Sendable, Equatable {
    /// The required model files (the built-in workflow's plus `[models]`), nil when the file names none.
    public var models: ModelRequirements?
    /// The `comfygate secrets` manifest to check, as an absolute path; nil when the file names none.
    public var secretsManifest: String?

    /// - Throws: ``ConfigurationProblem`` naming the file and every bad key.
    public init(text: String, path: String) throws(ConfigurationProblem) {
        let table: TOMLTable
        do {
            table = try TOML.parse(text)
        } catch {
            throw ConfigurationProblem(description: error.message(file: path))
        }
        var problems: [String] = []
        var requirements: ModelRequirements? = nil
        for key in table.keys where !["workflow", "models", "secrets_manifest"].contains(key) {
            problems.append("\(path): unknown setting '\(key)' (known: workflow, secrets_manifest, [models])")
        }
        if let node = table["secrets_manifest"] {
            if let manifest = node.string, !manifest.isEmpty {
                let base = URL(fileURLWithPath: path).deletingLastPathComponent()
                secretsManifest = URL(fileURLWithPath: manifest, relativeTo: base).standardizedFileURL.path
            } else {
                problems.append("\(path): secrets_manifest must be a file path")
            }
        }
        if let node = table["workflow"] {
            if let name = node.string, let builtIn = ModelRequirements.builtIn[name] {
                requirements = builtIn
            } else {
                let known = ModelRequirements.builtIn.keys.sorted().joined(separator: ", ")
                problems.append("\(path): workflow must be one of \(known)")
            }
        }
        if let node = table["models"] {
            if let models = node.table {
                var files = requirements?.files ?? []
                for folder in models.keys.sorted() {
                    guard let names = models[folder]?.array?.compactMap(\.string), names.count == models[folder]?.array?.count else {
                        problems.append("\(path): models.\(folder) must be a list of file names")
                        continue
                    }
                    files += names.map { ModelRequirements.File(folder: folder, name: $0) }
                }
                requirements = ModelRequirements(workflow: requirements?.workflow ?? "custom", files: files)
            } else {
                problems.append("\(path): [models] must be a table of folder = [file names]")
            }
        }
        guard problems.isEmpty else { throw ConfigurationProblem(description: problems.joined(separator: "\n")) }
        models = requirements
    }
}

/// A configuration file that cannot be used; the description lists every problem.
public struct ConfigurationProblem: Error, Equatable, CustomStringConvertible {
    public let description: String
}
