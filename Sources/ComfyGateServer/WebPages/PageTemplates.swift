import Mustache

/// The pages' Mustache templates: one layout and a template per page, which fill the layout's `title` and `body`
/// blocks. Every `{{value}}` is HTML-escaped by the renderer; no template holds a secret of its own.
enum PageTemplates {
    static let all: [String: String] = [
        "layout": layout, "login": login, "signOut": signOut, "account": account, "gallery": gallery, "admin": admin,
        "refused": refused,
    ]

    /// The templates, parsed once.
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all { try library.register(text, named: name) }
        return library
    }

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width,initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <title>{{$title}}ComfyGate{{/title}} · {{site}}</title>
        <link rel="stylesheet" href="/comfygate/static/comfygate.css">
        <script src="/comfygate/static/pages.js" defer></script>
        </head>
        <body>
        <header class="top">
        <a class="brand" href="/">{{site}} <small>· ComfyGate</small></a>
        {{#user}}
        <nav aria-label="ComfyGate">
        <a href="/">ComfyUI</a>
        <a href="/gallery"{{#onGallery}} aria-current="page"{{/onGallery}}>Gallery</a>
        <a href="/account"{{#onAccount}} aria-current="page"{{/onAccount}}>Account</a>
        {{#isAdmin}}<a href="/admin"{{#onAdmin}} aria-current="page"{{/onAdmin}}>Admin</a>{{/isAdmin}}
        <form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button class="link" type="submit">Sign out {{name}}</button></form>
        </nav>
        {{/user}}
        </header>
        <main id="main">
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        {{#problem}}<p class="problem" role="alert">{{problem}}</p>{{/problem}}
        {{$body}}{{/body}}
        </main>
        <footer>ComfyGate {{version}}</footer>
        </body>
        </html>

        """

    static let login = """
        {{<layout}}
        {{$title}}Sign in{{/title}}
        {{$body}}
        <section class="login">
        <h1>Sign in to {{site}}</h1>
        {{#ended}}<p class="notice" role="status">Your session has ended. Sign in again to go on.</p>{{/ended}}
        {{#error}}<p class="problem" role="alert">{{error}}</p>{{/error}}
        <form method="post" action="/login">
        <input type="hidden" name="next" value="{{next}}">
        <label for="username">User name</label>
        <input id="username" name="username" type="text" value="{{username}}" autocomplete="username" autocapitalize="none" required{{^hasUsername}} autofocus{{/hasUsername}}>
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required{{#hasUsername}} autofocus{{/hasUsername}}>
        <button type="submit">Sign in</button>
        </form>
        </section>
        {{/body}}
        {{/layout}}

        """

    static let signOut = """
        {{<layout}}
        {{$title}}Sign out{{/title}}
        {{$body}}
        <section class="login">
        <h1>Sign out of {{site}}?</h1>
        <form method="post" action="/logout">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit">Sign out</button>
        </form>
        <p><a href="/">Back to ComfyUI</a></p>
        </section>
        {{/body}}
        {{/layout}}

        """

    static let refused = """
        {{<layout}}
        {{$title}}{{heading}}{{/title}}
        {{$body}}
        <section>
        <h1>{{heading}}</h1>
        <p>{{message}}</p>
        <p><a href="{{back}}">Go back</a></p>
        </section>
        {{/body}}
        {{/layout}}

        """

    static let account = """
        {{<layout}}
        {{$title}}Account{{/title}}
        {{$body}}
        <h1>Account</h1>
        <section aria-labelledby="who">
        <h2 id="who">{{name}}</h2>
        <p>Role: <span class="badge">{{role}}</span>{{#createdAt}} · member since {{createdAt}}{{/createdAt}}</p>
        </section>

        {{#newToken}}
        <section id="token-shown" aria-labelledby="new-token">
        <h2 id="new-token">Your new token “{{label}}”</h2>
        <p class="problem">This is the only time it is shown: copy it now. Only its digest is kept.</p>
        <label for="token-value">Token</label>
        <input id="token-value" class="secret" type="text" readonly value="{{value}}" data-copy="Copy the token">
        <p>Use it with <code>curl</code>:</p>
        <pre id="token-curl" data-copy="Copy the curl command">curl -H "Authorization: Bearer {{value}}" {{origin}}/system_stats</pre>
        <p>Or with the official <code>comfy-sdk</code> (Comfy API v2):</p>
        <pre id="token-sdk" data-copy="Copy the comfy-sdk lines">export COMFY_BASE_URL={{origin}}
        export COMFY_API_KEY={{value}}
        python3 -c 'from comfy_sdk import Comfy; print(Comfy().jobs.list())'</pre>
        </section>
        {{/newToken}}

        <section aria-labelledby="tokens">
        <h2 id="tokens">API tokens</h2>
        {{#hasTokens}}
        <div class="scroll"><table>
        <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="muted">Action</span></th></tr></thead>
        <tbody>
        {{/hasTokens}}
        {{#tokens}}
        <tr><td>{{name}}</td><td>{{kind}}</td><td>{{state}}</td><td>{{created}}</td><td>{{expires}}</td><td>{{lastUsed}}</td>
        <td>{{#active}}<form class="inline" method="post" action="/account/tokens/{{id}}/revoke"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" type="submit" aria-label="Revoke token {{name}}">Revoke</button></form>{{/active}}</td></tr>
        {{/tokens}}
        {{#hasTokens}}
        </tbody></table></div>
        {{/hasTokens}}
        {{^tokens}}<p class="muted">No tokens yet.</p>{{/tokens}}
        <form method="post" action="/account/tokens" class="row">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <div><label for="token-name">Name</label><input id="token-name" name="name" type="text" maxlength="64" required placeholder="laptop, ci, notebook"></div>
        <div><label for="token-expiry">Expires</label><select id="token-expiry" name="expires">
        <option value="1d">in 1 day</option><option value="7d">in 7 days</option><option value="30d" selected>in 30 days</option>
        <option value="90d">in 90 days</option><option value="">never</option></select></div>
        <div><button type="submit">Create token</button></div>
        </form>
        </section>

        <section aria-labelledby="sessions">
        <h2 id="sessions">Where you are signed in</h2>
        <div class="scroll"><table>
        <thead><tr><th scope="col">Signed in</th><th scope="col">Last active</th><th scope="col">From</th><th scope="col">Browser</th></tr></thead>
        <tbody>
        {{#sessions}}<tr><td>{{created}}{{#current}} <span class="badge">this browser</span>{{/current}}</td><td>{{lastSeen}}</td><td>{{address}}</td><td>{{agent}}</td></tr>{{/sessions}}
        </tbody></table></div>
        {{#hasOtherSessions}}
        <form method="post" action="/account/sessions/end-others"><input type="hidden" name="csrf" value="{{csrf}}"><button class="secondary" type="submit">Sign out everywhere else</button></form>
        {{/hasOtherSessions}}
        </section>

        {{#canChangePassword}}
        <section aria-labelledby="password">
        <h2 id="password">Change your password</h2>
        <form method="post" action="/account/password">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="current-password">Current password</label><input id="current-password" name="current" type="password" autocomplete="current-password" required>
        <label for="new-password">New password (8 characters or more)</label><input id="new-password" name="new" type="password" autocomplete="new-password" minlength="8" required>
        <label for="confirm-password">New password again</label><input id="confirm-password" name="confirm" type="password" autocomplete="new-password" minlength="8" required>
        <p><button type="submit">Change password</button></p>
        <p class="muted">Your other browsers are signed out when it changes.</p>
        </form>
        </section>
        {{/canChangePassword}}

        <section aria-labelledby="usage">
        <h2 id="usage">Usage and limits</h2>
        <div class="scroll"><table>
        <thead><tr><th scope="col">What</th><th scope="col">Last 24 hours</th><th scope="col">Limit</th></tr></thead>
        <tbody>{{#usage}}<tr><td>{{what}}</td><td>{{used}}</td><td>{{limit}}</td></tr>{{/usage}}</tbody>
        </table></div>
        <p class="muted">Share of the GPU: weight {{weight}}.</p>
        </section>
        {{/body}}
        {{/layout}}

        """

    static let gallery = """
        {{<layout}}
        {{$title}}Gallery{{/title}}
        {{$body}}
        <h1>Gallery</h1>
        {{^items}}<section><p>Nothing here yet. What you make in ComfyUI appears here, newest first.</p></section>{{/items}}
        <div class="grid">
        {{#items}}
        <article class="card" aria-label="Job {{job}}">
        {{#image}}<a href="{{viewURL}}"><img src="{{previewURL}}" alt="Output {{fileName}} of job {{job}}" loading="lazy"></a>{{/image}}
        {{^image}}<p class="text"><a href="{{viewURL}}">{{fileName}}</a></p>{{/image}}
        <div class="text">
        {{#prompt}}<p>{{prompt}}</p>{{/prompt}}
        <p class="muted">{{when}}{{#parameters}} · {{parameters}}{{/parameters}}</p>
        </div>
        <div class="actions">
        <a class="button" href="{{viewURL}}" download="{{fileName}}">Download</a>
        <a class="button" href="/?comfygate-job={{job}}">Open in ComfyUI</a>
        <form class="inline" method="post" action="/gallery/{{job}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" type="submit" aria-label="Delete job {{job}}">Delete</button></form>
        </div>
        </article>
        {{/items}}
        </div>
        {{#older}}<p><a class="button" href="/gallery?before={{older}}">Older</a></p>{{/older}}
        {{/body}}
        {{/layout}}

        """

    static let admin = """
        {{<layout}}
        {{$title}}Admin{{/title}}
        {{$body}}
        <h1>Admin</h1>
        {{#oneTimePassword}}
        <section aria-labelledby="one-time">
        <h2 id="one-time">New password of {{user}}</h2>
        <p class="problem">Shown this once: give it to {{user}}, who should change it on their account page.</p>
        <label for="one-time-password">Password</label>
        <input id="one-time-password" class="secret" type="text" readonly value="{{password}}" data-copy="Copy the password">
        </section>
        {{/oneTimePassword}}

        <section aria-labelledby="users">
        <h2 id="users">Users</h2>
        <div class="scroll"><table>
        <thead><tr><th scope="col">User</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Created</th><th scope="col"><span class="muted">Actions</span></th></tr></thead>
        <tbody>
        {{#users}}
        <tr><td>{{name}}</td><td>{{role}}</td><td>{{state}}</td><td>{{created}}</td>
        <td><form class="inline" method="post" action="/admin/users/{{name}}"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="action" value="role">
        <label class="sr-only" for="role-{{name}}">Role of {{name}}</label>
        <select id="role-{{name}}" name="role">{{#roles}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/roles}}</select>
        <button class="secondary" type="submit">Set role</button></form>
        <form class="inline" method="post" action="/admin/users/{{name}}"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="action" value="{{toggle}}"><button class="{{toggleStyle}}" type="submit" aria-label="{{toggleLabel}} {{name}}">{{toggleLabel}}</button></form>
        <form class="inline" method="post" action="/admin/users/{{name}}"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="action" value="reset"><button class="secondary" type="submit" aria-label="Reset the password of {{name}}">Reset password</button></form></td></tr>
        {{/users}}
        </tbody></table></div>
        <form method="post" action="/admin/users" class="row">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <div><label for="new-user">New user</label><input id="new-user" name="name" type="text" maxlength="64" required autocapitalize="none"></div>
        <div><label for="new-role">Role</label><select id="new-role" name="role"><option>user</option><option>viewer</option><option>admin</option></select></div>
        <div><button type="submit">Add user</button></div>
        </form>
        <p class="muted">A new user gets a random password, shown once here.</p>
        </section>

        <section aria-labelledby="all-tokens">
        <h2 id="all-tokens">API tokens</h2>
        <div class="scroll"><table>
        <thead><tr><th scope="col">User</th><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Last used</th><th scope="col"><span class="muted">Action</span></th></tr></thead>
        <tbody>
        {{#tokens}}<tr><td>{{owner}}</td><td>{{name}}</td><td>{{kind}}</td><td>{{state}}</td><td>{{lastUsed}}</td>
        <td>{{#active}}<form class="inline" method="post" action="/admin/tokens/{{id}}/revoke"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" type="submit" aria-label="Revoke token {{name}} of {{owner}}">Revoke</button></form>{{/active}}</td></tr>{{/tokens}}
        </tbody></table></div>
        <form method="post" action="/admin/tokens/import">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <div class="row">
        <div><label for="import-user">Import a bcrypt hash for user</label><input id="import-user" name="user" type="text" required></div>
        <div><label for="import-name">Token name</label><input id="import-name" name="name" type="text" maxlength="64" value="imported"></div>
        </div>
        <label for="import-hash">Hash ($2a$, $2b$ or $2y$, 60 characters)</label><textarea id="import-hash" name="hash" required spellcheck="false"></textarea>
        <p><button type="submit">Import</button></p>
        </form>
        </section>

        <section aria-labelledby="backends">
        <h2 id="backends">ComfyUI backends</h2>
        <div class="scroll"><table>
        <thead><tr><th scope="col">Backend</th><th scope="col">State</th><th scope="col">Jobs</th><th scope="col">Its queue</th><th scope="col">Devices</th><th scope="col"><span class="muted">Action</span></th></tr></thead><tbody>
        {{#backends}}<tr><td>{{name}}<br><span class="muted">{{url}}</span></td><td>{{state}}{{#drained}}, drained{{/drained}}</td><td>{{jobs}}</td><td>{{queue}}</td><td>{{devices}}</td>
        <td><form class="inline" method="post" action="/admin/backends/{{name}}/{{action}}"><input type="hidden" name="csrf" value="{{csrf}}"><button class="{{actionStyle}}" type="submit" aria-label="{{actionLabel}} backend {{name}}">{{actionLabel}}</button></form></td></tr>{{/backends}}
        </tbody></table></div>
        </section>

        <section aria-labelledby="queue">
        <h2 id="queue">Queue</h2>
        {{^jobs}}<p>Nothing waiting or running.</p>{{/jobs}}
        {{#hasJobs}}<div class="scroll"><table>
        <thead><tr><th scope="col">Job</th><th scope="col">User</th><th scope="col">State</th><th scope="col">Place</th><th scope="col">Submitted</th><th scope="col"><span class="muted">Action</span></th></tr></thead><tbody>{{/hasJobs}}
        {{#jobs}}<tr><td><code>{{id}}</code></td><td>{{owner}}</td><td>{{state}}</td><td>{{position}}</td><td>{{created}}</td>
        <td><form class="inline" method="post" action="/admin/jobs/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" type="submit" aria-label="Cancel job {{id}}">Cancel</button></form></td></tr>{{/jobs}}
        {{#hasJobs}}</tbody></table></div>{{/hasJobs}}
        </section>

        <section aria-labelledby="audit">
        <h2 id="audit">Audit trail</h2>
        <form method="get" action="/admin" class="row">
        <div><label for="audit-user">User</label><input id="audit-user" name="user" type="text" value="{{filter.user}}"></div>
        <div><label for="audit-kind">Kind</label><select id="audit-kind" name="kind">{{#kinds}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/kinds}}</select></div>
        <div><label for="audit-since">Since</label><select id="audit-since" name="since">{{#periods}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/periods}}</select></div>
        <div><button class="secondary" type="submit">Filter</button></div>
        </form>
        <div class="scroll"><table>
        <thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">User</th><th scope="col">Client</th><th scope="col">Detail</th></tr></thead>
        <tbody>{{#events}}<tr><td>{{time}}</td><td>{{action}}</td><td>{{user}}</td><td>{{client}}</td><td>{{detail}}</td></tr>{{/events}}</tbody>
        </table></div>
        {{^events}}<p class="muted">No events match.</p>{{/events}}
        <p>{{#newer}}<a href="{{newer}}">Newer</a> {{/newer}}{{#older}}<a href="{{older}}">Older</a>{{/older}}</p>
        </section>
        {{/body}}
        {{/layout}}

        """
}
