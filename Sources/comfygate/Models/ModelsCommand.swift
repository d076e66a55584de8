import ArgumentParser
import ComfyGateModels
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `comfygate models`: the model files the seed deployment's workflows load — listed, downloaded, verified.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, download and verify the Qwen-Image / Qwen-Image-Edit model files ComfyUI's workflows load.",
        discussion: """
            Files land in ComfyUI's models directory (--models-dir, or COMFYUI_MODELS_DIR), each in its folder
            (diffusion_models, text_encoders, vae, loras). Downloads come from the Hugging Face hub, or the mirror
            in HF_ENDPOINT, with HF_TOKEN as the token when set; they resume where they stopped and are verified
            with SHA-256 before they take their name.

            Examples:
              comfygate models list --models-dir /srv/comfyui/models
              comfygate models download --models-dir /srv/comfyui/models            \\
                  # the qwen-image-edit set
              comfygate models download qwen-image lightning --models-dir ./models
              comfygate models verify --models-dir /srv/comfyui/models --json
            """,
        subcommands: [List.self, Download.self, Verify.self]
    )

    /// Where the models directory is.
    struct Location: ParsableArguments {
        @Option(name: .customLong("models-dir"), help: ArgumentHelp("ComfyUI's models directory (default: COMFYUI_MODELS_DIR).", valueName: "dir"))
        var modelsDirectory: String?

        /// The directory named, or nil when neither the option nor the environment names one.
        var url: URL? {
            let path = modelsDirectory ?? ProcessInfo.processInfo.environment["COMFYUI_MODELS_DIR"]
            return path.flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        }

        func required() throws -> URL {
            guard let url else {
                throw CommandFailure.usage("say where ComfyUI's models directory is: --models-dir DIR or COMFYUI_MODELS_DIR")
            }
            return url
        }
    }

    static func source() throws -> ModelSource {
        guard let source = ModelSource(environment: ProcessInfo.processInfo.environment) else {
            throw CommandFailure.usage("HF_ENDPOINT is not an http(s) URL")
        }
        return source
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the manifest's files and sets, and which are in the models directory.",
            discussion: "Example: comfygate models list --models-dir /srv/comfyui/models --json")

        @OptionGroup var location: Location
        @Flag(help: "Print JSON (version 1).") var json = false

        func run() async throws {
            try await CommandFailure.report {
                let source = try ModelsCommand.source()
                let record = try location.url.map { try ModelRecord.load(from: $0) } ?? ModelRecord()
                let rows = ModelManifest.files.map { file -> (ModelFile, String) in
                    guard let directory = location.url else { return (file, "-") }
                    let path = directory.appendingPathComponent(file.relativePath).path
                    guard FileManager.default.fileExists(atPath: path) else {
                        return (file, FileManager.default.fileExists(atPath: path + ".part") ? "partial" : "missing")
                    }
                    return (file, record.files[file.relativePath] != nil ? "verified" : "present")
                }
                if json {
                    try Output.printJSON([
                        "version": 1,
                        "models_dir": location.url?.path ?? NSNull(),
                        "files": rows.map { file, status in
                            [
                                "name": file.name, "folder": file.folder, "sets": file.sets, "summary": file.summary,
                                "url": source.url(of: file).absoluteString, "status": status,
                                "sha256": record.files[file.relativePath]?.sha256 ?? file.sha256 ?? NSNull(),
                                "size": record.files[file.relativePath]?.size ?? file.size ?? NSNull(),
                            ] as [String: any Sendable]
                        },
                    ] as [String: any Sendable])
                } else {
                    Output.printTable(
                        header: ["FILE", "FOLDER", "SETS", "STATUS", "SIZE"],
                        rows: rows.map { file, status in
                            [file.name, file.folder, file.sets.joined(separator: ","), status,
                             (record.files[file.relativePath]?.size ?? file.size).map(ByteCount.text) ?? "from the hub"]
                        })
                    print("\nSource: \(source.endpoint.absoluteString)/<repository>/resolve/<revision>/<path>; sets: \(ModelManifest.sets.joined(separator: ", ")).")
                }
            }
        }
    }

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download model files (by file or set name; the qwen-image-edit set by default), resumably and verified.",
            discussion: """
                Examples:
                  comfygate models download --models-dir ./models
                  HF_ENDPOINT=https://hf-mirror.example comfygate models download \\
                      qwen-image --models-dir ./models
                """)

        @Argument(help: ArgumentHelp("Files or sets to download.", valueName: "name")) var names: [String] = []
        @Option(name: .customLong("set"), help: ArgumentHelp("A set to download (same as naming it).", valueName: "set"))
        var sets: [String] = []
        @Option(help: ArgumentHelp("Files downloaded at once.", valueName: "count")) var parallel = 3
        @OptionGroup var location: Location

        func validate() throws {
            guard (1...16).contains(parallel) else { throw ValidationError("--parallel must be 1 to 16") }
        }

        func run() async throws {
            try await CommandFailure.report {
                let directory = try location.required()
                let files = try ModelsCommand.select(names + sets)
                let source = try ModelsCommand.source()
                let progress = DownloadProgress(isTerminal: isatty(STDOUT_FILENO) == 1) { text in
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
                let outcomes = try await ModelDownloader.withClient { client in
                    try await ModelInstaller(
                        downloader: ModelDownloader(client: client, source: source), modelsDirectory: directory, parallel: parallel
                    ).install(files, progress: progress)
                }
                let failures = outcomes.compactMap { outcome -> String? in
                    if case .failed(_, let error) = outcome { return error.description }
                    return nil
                }
                guard failures.isEmpty else { throw CommandFailure.failed(failures.joined(separator: "\n")) }
                print("\(outcomes.count) file(s) in \(directory.path), each verified with SHA-256.")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the files in the models directory against their recorded (or published) SHA-256.",
            discussion: "Exit status 1 when a file is missing or does not match.\n\nExample: comfygate models verify --models-dir ./models")

        @Argument(help: ArgumentHelp("Files or sets to verify (default: every file the directory has).", valueName: "name"))
        var names: [String] = []
        @OptionGroup var location: Location
        @Flag(help: "Print JSON (version 1).") var json = false

        func run() async throws {
            try await CommandFailure.report {
                let directory = try location.required()
                let record = try ModelRecord.load(from: directory)
                let files = names.isEmpty
                    ? ModelManifest.files.filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0.relativePath).path) }
                    : try ModelsCommand.select(names)
                let source = try ModelsCommand.source()
                let results = try await ModelDownloader.withClient { client in
                    var results: [(file: ModelFile, status: String, detail: String)] = []
                    for file in files {
                        results.append(try await Self.check(file, in: directory, record: record, downloader: ModelDownloader(client: client, source: source)))
                    }
                    return results
                }
                if json {
                    try Output.printJSON([
                        "version": 1, "models_dir": directory.path,
                        "files": results.map { ["name": $0.file.name, "folder": $0.file.folder, "status": $0.status, "detail": $0.detail] },
                    ] as [String: any Sendable])
                } else {
                    Output.printTable(header: ["FILE", "STATUS", "DETAIL"], rows: results.map { [$0.file.relativePath, $0.status, $0.detail] })
                }
                if results.isEmpty { throw CommandFailure.failed("no model files of the manifest in \(directory.path)") }
                if results.contains(where: { $0.status != "ok" }) { throw ExitCode(1) }
            }
        }

        /// One file against its recorded, pinned or published SHA-256.
        static func check(_ file: ModelFile, in directory: URL, record: ModelRecord, downloader: ModelDownloader) async throws
            -> (file: ModelFile, status: String, detail: String)
        {
            let url = directory.appendingPathComponent(file.relativePath)
            guard FileManager.default.fileExists(atPath: url.path) else { return (file, "missing", url.path) }
            var expected = record.files[file.relativePath]?.sha256 ?? file.sha256
            if expected == nil { expected = (try? await downloader.published(file))?.sha256 }
            guard let expected else { return (file, "unverifiable", "no recorded or published SHA-256") }
            let actual = try ModelDownloader.sha256(of: url)
            return actual == expected ? (file, "ok", actual) : (file, "mismatch", "SHA-256 \(actual), expected \(expected)")
        }
    }

    /// The files named, as a usage error when a name is unknown.
    static func select(_ names: [String]) throws -> [ModelFile] {
        do {
            return try ModelManifest.select(names)
        } catch {
            throw CommandFailure.usage(error.description)
        }
    }
}
