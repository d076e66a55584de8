/// This release of ComfyGate.
public enum ComfyGateVersion {
    /// The version `comfygate --version` prints, the pages show and the container image is tagged with.
    public static let current = "0.1.0"
}
