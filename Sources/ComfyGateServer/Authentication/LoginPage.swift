/// The login form: plain HTML with inline style, no script, served with a strict CSP.
enum LoginPage {
    static func render(next: String, error: String?) -> String {
        let message = error.map { #"<p class="error" role="alert">\#(escape($0))</p>"# } ?? ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
            <title>Sign in · ComfyGate</title>
            <style>
            body{font-family:system-ui,sans-serif;background:#1e1f22;color:#e6e6e6;display:flex;min-height:100vh;margin:0;align-items:center;justify-content:center}
            form{background:#2b2d31;padding:2rem;border-radius:8px;width:18rem;box-shadow:0 4px 24px #0006}
            h1{font-size:1.2rem;margin:0 0 1rem}label{display:block;margin:.6rem 0 .2rem;font-size:.9rem}
            input{width:100%;box-sizing:border-box;padding:.5rem;border-radius:4px;border:1px solid #555;background:#1e1f22;color:inherit}
            button{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#5865f2;color:#fff;font-weight:600}
            .error{color:#ff8080;font-size:.9rem}
            </style></head><body>
            <form method="post" action="/login">
            <h1>ComfyUI · sign in</h1>
            \(message)
            <input type="hidden" name="next" value="\(escape(next))">
            <label for="username">User name</label><input id="username" name="username" autocomplete="username" required autofocus>
            <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
            <button type="submit">Sign in</button>
            </form></body></html>
            """
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
