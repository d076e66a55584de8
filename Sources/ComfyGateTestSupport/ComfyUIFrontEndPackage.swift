import ComfyGateCore
import Foundation

/// ComfyUI's real front end, `comfyui-frontend-package==1.27.10` from PyPI (the version ComfyUI 0.3.64 pins), which
/// `scripts/test` installs: its `static` folder is the web root for ``ComfyUIStandIn/Options/webRoot``.
public enum ComfyUIFrontEndPackage {
    /// Why the front end's files could not be found.
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The package's `static` folder: `COMFYUI_FRONTEND_ROOT` when set (scripts/test exports it), else where python3
    /// finds the installed package.
    public static func staticDirectory() async throws -> String {
        if let root = ProcessInfo.processInfo.environment["COMFYUI_FRONTEND_ROOT"], !root.isEmpty {
            guard FileManager.default.fileExists(atPath: root + "/index.html") else {
                throw Unavailable(description: "COMFYUI_FRONTEND_ROOT=\(root) has no index.html")
            }
            return root
        }
        let script = "import comfyui_frontend_package, os; print(os.path.join(os.path.dirname(comfyui_frontend_package.__file__), 'static'))"
        let completion: ChildProcess.Completion
        do {
            completion = try await ChildProcess.run(["python3", "-c", script], timeout: .seconds(60))
        } catch {
            throw Unavailable(description: "python3 could not be started (\(error)); scripts/test installs comfyui-frontend-package")
        }
        let root = completion.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard completion.status == 0, FileManager.default.fileExists(atPath: root + "/index.html") else {
            throw Unavailable(
                description: "ComfyUI's front end is not installed (\(completion.output.suffix(300))); scripts/test installs it, or run "
                    + "`python3 -m pip install comfyui-frontend-package==1.27.10` and set COMFYUI_FRONTEND_ROOT to its static folder")
        }
        return root
    }
}
