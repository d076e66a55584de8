import Hummingbird

/// `app/custom_node_manager.py` and `app/model_manager.py` of 0.3.64 (A.5): the routes the front end asks at load for
/// custom nodes' translations and example workflows, and for the model folders.
enum StandInAppManagerRoutes {
    /// Model folders whose files sit in more than one directory (`folder_paths.folder_names_and_paths`), each
    /// directory under `models/`.
    static let modelDirectories: [String: [String]] = [
        "text_encoders": ["text_encoders", "clip"],
        "diffusion_models": ["unet", "diffusion_models"],
        "controlnet": ["controlnet", "t2i_adapter"],
    ]

    static func register(on routes: StandInRouteTable, state: StandInState) {
        // `build_translations` over custom nodes' `locales/`: the stand-in loads no custom node.
        routes.add("/i18n", .get) { _, _ in StandInResponses.json([:]) }
        // Custom node folder → its example workflow names; none without custom nodes.
        routes.add("/workflow_templates", .get) { _, _ in StandInResponses.json([:]) }
        routes.add("/experiment/models", .get) { _, _ in
            let folders = state.options.models.keys.sorted().filter { $0 != "configs" && $0 != "custom_nodes" }
            return StandInResponses.json(
                .array(
                    folders.map { name in
                        let directories = (modelDirectories[name] ?? [name]).map { StandInJSON.string(state.files.root + "/models/" + $0) }
                        return ["name": .string(name), "folders": .array(directories)]
                    }))
        }
    }
}
