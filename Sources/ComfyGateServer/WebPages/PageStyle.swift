/// The pages' one stylesheet (light and dark, following the system; readable on a phone; visible focus) and their
/// one script, which only adds copy buttons: every page works without it.
enum PageStyle {
    static let css = """
        :root{color-scheme:light dark;--bg:#f6f7f9;--panel:#fff;--text:#1b1d21;--muted:#555b66;--line:#d5d9e0;
        --accent:#3346c8;--accent-text:#fff;--danger:#b3261e;--ok:#1d6b35;--code:#eef0f4}
        @media (prefers-color-scheme:dark){:root{--bg:#17181b;--panel:#222428;--text:#e8e9ec;--muted:#a9afba;--line:#3a3d44;
        --accent:#8c9bff;--accent-text:#10121a;--danger:#ff8a80;--ok:#7fd89a;--code:#2c2f35}}
        *{box-sizing:border-box}
        body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--text)}
        a{color:var(--accent)}
        :focus-visible{outline:3px solid var(--accent);outline-offset:2px}
        .top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.25rem;padding:.75rem 1rem;background:var(--panel);
        border-bottom:1px solid var(--line)}
        .brand{font-weight:700;text-decoration:none;color:var(--text)}
        .brand small{font-weight:400;color:var(--muted)}
        nav{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem}
        nav a{text-decoration:none;padding:.25rem 0}
        nav a[aria-current=page]{font-weight:700;border-bottom:2px solid var(--accent)}
        main{max-width:72rem;margin:0 auto;padding:1rem}
        section{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:1rem 1.25rem;margin:0 0 1rem}
        h1{font-size:1.4rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:0 0 .75rem}
        .muted{color:var(--muted)}
        .sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;margin:0;padding:0}
        table{width:100%;border-collapse:collapse;font-size:.95rem}
        th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
        th{font-weight:600;color:var(--muted)}
        .scroll{overflow-x:auto}
        label{display:block;font-weight:600;margin:.6rem 0 .2rem}
        input,select,textarea{font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:6px;
        padding:.45rem .6rem;max-width:100%}
        input[type=text],input[type=password],textarea{width:22rem}
        textarea{width:100%;min-height:4rem}
        button,.button{font:inherit;font-weight:600;cursor:pointer;border:0;border-radius:6px;padding:.45rem .9rem;
        background:var(--accent);color:var(--accent-text);text-decoration:none;display:inline-block}
        button.secondary{background:transparent;color:var(--accent);border:1px solid var(--accent)}
        button.danger{background:transparent;color:var(--danger);border:1px solid var(--danger)}
        button.link{background:none;color:var(--accent);padding:0;font-weight:400;text-decoration:underline}
        form.inline{display:inline}
        .row{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end}
        .row label{margin-top:0}
        .notice{background:var(--panel);border-left:4px solid var(--ok);padding:.6rem 1rem;border-radius:6px}
        .problem{background:var(--panel);border-left:4px solid var(--danger);padding:.6rem 1rem;border-radius:6px}
        code,pre,.secret{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9rem}
        pre{background:var(--code);padding:.6rem .8rem;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
        .secret{width:100%;background:var(--code)}
        .badge{display:inline-block;padding:0 .5rem;border-radius:999px;border:1px solid var(--line);font-size:.85rem}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:1rem}
        .card{background:var(--panel);border:1px solid var(--line);border-radius:10px;overflow:hidden;display:flex;flex-direction:column}
        .card img{width:100%;aspect-ratio:1;object-fit:contain;background:var(--code)}
        .card .text{padding:.6rem .8rem;flex:1}
        .card .actions{display:flex;flex-wrap:wrap;gap:.5rem;padding:.6rem .8rem;border-top:1px solid var(--line)}
        .login{max-width:24rem;margin:8vh auto}
        .login input{width:100%}
        .login button{width:100%;margin-top:1rem}
        footer{text-align:center;color:var(--muted);font-size:.85rem;padding:2rem 1rem}
        @media (max-width:40rem){input[type=text],input[type=password]{width:100%}th,td{padding:.35rem .3rem}}

        """

    /// Adds a "Copy" button after every element marked `data-copy`.
    static let script = """
        "use strict";
        document.querySelectorAll("[data-copy]").forEach(function (field) {
          if (!navigator.clipboard) return;
          var button = document.createElement("button");
          button.type = "button";
          button.className = "secondary";
          button.textContent = "Copy";
          button.setAttribute("aria-label", field.getAttribute("data-copy"));
          button.addEventListener("click", function () {
            navigator.clipboard.writeText(field.value || field.textContent).then(function () {
              button.textContent = "Copied";
              setTimeout(function () { button.textContent = "Copy"; }, 2000);
            });
          });
          field.insertAdjacentElement("afterend", button);
        });

        """
}
