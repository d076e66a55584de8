import ComfyGateDoctor
import Foundation
import Testing

@Suite("doctor inputs: token files and --config")
struct DoctorInputTests {
    private func withFile<T>(_ text: String, _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("doctor-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    @Test func rawTokenFileIsTrimmed() throws {
        #expect(try withFile("  abc_DEF-123\n\n") { try TokenSource.read(file: $0, key: nil) } == "abc_DEF-123")
        #expect(throws: TokenSource.Failure.self) { try withFile("\n") { try TokenSource.read(file: $0, key: nil) } }
        #expect(throws: TokenSource.Failure.self) { try TokenSource.read(file: "/nonexistent/doctor-token", key: nil) }
    }

    @Test func dotenvKeepsTheSeedsTokenIntact() throws {
        let env = """
            # generated
            export COMFYUI_URL=http://localhost:8188
            QWEN_API_USER_TOKEN=2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij
            COMFYUI_BEARER_TOKEN='$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.'
            QUOTED="a \\"b\\" c" # comment
            PLAIN=value # comment
            EMPTY=
            """
        let values = TokenSource.dotenv(env)
        #expect(values["QWEN_API_USER_TOKEN"] == "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij")
        #expect(values["COMFYUI_BEARER_TOKEN"] == "$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.")
        #expect(values["COMFYUI_URL"] == "http://localhost:8188")
        #expect(values["QUOTED"] == #"a "b" c"#)
        #expect(values["PLAIN"] == "value")
        #expect(try withFile(env) { try TokenSource.read(file: $0, key: "QWEN_API_USER_TOKEN") } == "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij")
        let missing = #expect(throws: TokenSource.Failure.self) { try withFile(env) { try TokenSource.read(file: $0, key: "NOPE") } }
        #expect(missing?.description.hasSuffix("has no variable NOPE") == true)
        #expect(throws: TokenSource.Failure.self) { try withFile(env) { try TokenSource.read(file: $0, key: "EMPTY") } }
    }

    @Test func configNamesABuiltInWorkflowAndExtraModels() throws {
        let file = try DoctorConfigurationFile(
            text: """
                workflow = "qwen-image-edit-fp8"
                [models]
                loras = ["Qwen-Image-Lightning-4steps-V1.0.safetensors"]
                """, path: "doctor.toml")
        let models = try #require(file.models)
        #expect(models.workflow == "qwen-image-edit-fp8")
        #expect(models.files.map(\.folder) == ["diffusion_models", "text_encoders", "vae", "loras"])
        #expect(models.files.last?.name == "Qwen-Image-Lightning-4steps-V1.0.safetensors")
        #expect(try DoctorConfigurationFile(text: "", path: "doctor.toml").models == nil)
    }

    @Test func configProblemsAreAllReported() {
        let error = #expect(throws: ConfigurationProblem.self) {
            try DoctorConfigurationFile(text: "workflow = \"sdxl\"\ncolour = true\n[models]\nvae = \"x\"\n", path: "d.toml")
        }
        let lines = error?.description.split(separator: "\n") ?? []
        #expect(lines.count == 3)
        #expect(error?.description.contains("d.toml: workflow must be one of qwen-image-edit-fp8, qwen-image-fp8") == true)
        #expect(error?.description.contains("d.toml: unknown setting 'colour'") == true)
        #expect(error?.description.contains("d.toml: models.vae must be a list of file names") == true)
    }

    @Test func urlValidation() {
        #expect(Doctor.validate(url: "http://127.0.0.1:8188") == nil)
        #expect(Doctor.validate(url: "https://comfy.example/prefix") == nil)
        #expect(Doctor.validate(url: "127.0.0.1:8188") != nil)
        #expect(Doctor.validate(url: "http://h:1/?token=x") != nil)
    }
}
