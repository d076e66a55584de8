/// ComfyGate's extension inside ComfyUI's own front end, listed by `GET /extensions` and served by the gateway
/// (ComfyUI is not modified). It shows who is signed in, with links to Account, Gallery and Sign out (a badge on
/// the page and a "ComfyGate" menu), opens a job's workflow from the gallery (`/?comfygate-job=<id>`), and when the
/// session has ended says so and sends the page to the sign-in page instead of failing silently.
enum ComfyUIExtension {
    static let script = """
        // ComfyGate's extension for ComfyUI's front end (served by the gateway, not part of ComfyUI).
        import { app } from "../../scripts/app.js";
        import { api } from "../../scripts/api.js";

        async function whoAmI() {
          try {
            const answer = await fetch("/comfygate/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
            if (answer.status === 401) return { ended: true };
            return answer.ok ? await answer.json() : null;
          } catch (error) {
            return null; // the gateway is unreachable: say nothing, ComfyUI shows its own reconnecting state
          }
        }

        const me = await whoAmI();

        function go(path) { window.location.assign(path); }

        function sessionEnded() {
          if (document.getElementById("comfygate-ended")) return;
          const banner = document.createElement("div");
          banner.id = "comfygate-ended";
          banner.setAttribute("role", "alert");
          banner.style.cssText = "position:fixed;inset:0 0 auto 0;z-index:10000;padding:12px 16px;background:#b3261e;" +
            "color:#fff;font:600 15px system-ui,sans-serif;text-align:center";
          banner.textContent = "Your ComfyGate session has ended. Taking you to the sign-in page…";
          document.body.appendChild(banner);
          setTimeout(() => go("/login?ended=1&next=" + encodeURIComponent(location.pathname + location.search)), 2500);
        }

        async function checkSession() {
          const now = await whoAmI();
          if (now && now.ended) sessionEnded();
        }

        function badge(user) {
          const box = document.createElement("div");
          box.id = "comfygate-user";
          box.style.cssText = "position:fixed;left:50%;top:8px;transform:translateX(-50%);z-index:9999;display:flex;gap:10px;" +
            "align-items:center;" +
            "padding:6px 12px;border-radius:999px;background:rgba(30,31,34,.92);color:#e6e6e6;font:13px system-ui,sans-serif;" +
            "box-shadow:0 2px 10px rgba(0,0,0,.35)";
          const name = document.createElement("span");
          name.className = "comfygate-user-name";
          name.textContent = user.user + (user.role === "admin" ? " (admin)" : "");
          box.appendChild(name);
          for (const [label, href] of user.links) {
            const link = document.createElement("a");
            link.href = href;
            link.textContent = label;
            link.style.color = "#9fb0ff";
            box.appendChild(link);
          }
          document.body.appendChild(box);
        }

        if (me && me.ended) {
          sessionEnded();
        } else if (me && me.user) {
          const links = [["Account", "/account"], ["Gallery", "/gallery"]];
          if (me.role === "admin") links.push(["Admin", "/admin"]);
          links.push(["Sign out", "/logout"]);
          app.registerExtension({
            name: "ComfyGate.UserMenu",
            commands: links.map(([label, href]) => ({
              id: "ComfyGate." + label.replace(" ", ""),
              label: label,
              function: () => go(href),
            })),
            menuCommands: [{ path: ["ComfyGate · " + me.user], commands: links.map(([label]) => "ComfyGate." + label.replace(" ", "")) }],
            async setup() {
              badge({ user: me.user, role: me.role, links: links });
              api.addEventListener("reconnecting", checkSession);
              setInterval(checkSession, 15000);
              const job = new URLSearchParams(location.search).get("comfygate-job");
              if (job) {
                const answer = await fetch("/comfygate/jobs/" + encodeURIComponent(job) + "/workflow", { credentials: "same-origin" });
                if (answer.ok) await app.loadApiJson(await answer.json(), "job " + job);
                history.replaceState(null, "", location.pathname);
              }
            },
          });
        }

        """
}
