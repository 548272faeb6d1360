/* mailintake web admin: field applicability, confirmations and the Authorize button.
   No inline script anywhere: the pages' Content-Security-Policy allows only this file. */
(function () {
  "use strict";

  // Fields the matrix marks not applicable are disabled (also preserved secret inputs,
  // which htmx keeps as they were across a re-render of the form).
  function syncFields(root) {
    root.querySelectorAll("[data-need]").forEach(function (row) {
      var off = row.dataset.need === "not_applicable";
      row.querySelectorAll("input, textarea, select").forEach(function (input) {
        input.disabled = off;
      });
    });
  }

  function api(method, url, body) {
    var options = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          var text = data.problems ? data.problems.join("; ") : data.detail || response.statusText;
          throw new Error(text);
        }
        return data;
      });
    });
  }

  function show(out, kind, title, text) {
    out.className = "outcome " + kind;
    out.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = title;
    out.appendChild(strong);
    if (text) {
      var p = document.createElement("p");
      p.textContent = text;
      out.appendChild(p);
    }
  }

  function setState(state) {
    var badge = document.querySelector("#auth-state .state");
    if (badge) {
      badge.className = "state state-" + state;
      badge.dataset.state = state;
      badge.textContent = state.replace(/_/g, " ");
    }
    if (state === "authorized") {
      var banner = document.getElementById("banner");
      if (banner) banner.remove();
    }
  }

  function finish(out, answer) {
    setState(answer.authorization_state);
    if (answer.authorization_state === "authorized") {
      show(out, "ok", "Login successful", answer.message || "");
    } else {
      show(out, "error", "Sign-in failed", answer.message || answer.detail || answer.authorization_state);
    }
  }

  function statusUrl(name) {
    return "/api/v1/mailboxes/" + encodeURIComponent(name) + "/authorization";
  }

  // Authorization code: the popup ends on this server's callback, which stores the tokens.
  // Completion is seen from the mailbox's state (and from the callback's message, if any).
  function waitForPopup(out, name, popup, before) {
    var done = false;
    function check(closed) {
      if (done) return;
      api("GET", statusUrl(name)).then(function (now) {
        var changed = now.authorized_at !== before.authorized_at || now.authorization_state !== before.authorization_state;
        if (now.authorization_state === "authorized" && now.authorized_at !== before.authorized_at) {
          done = true;
          finish(out, { authorization_state: "authorized", message: "Signed in as " + (now.account || "the mailbox user") + "." });
        } else if (changed && now.authorization_state !== "authorized") {
          done = true;
          finish(out, { authorization_state: now.authorization_state, message: now.detail });
        } else if (closed) {
          done = true;
          show(out, "error", "Sign-in not finished", "The login window was closed before the sign-in finished. Click Authorize to try again.");
        } else {
          window.setTimeout(function () { check(popup.closed); }, 1000);
        }
      }).catch(function (error) {
        done = true;
        show(out, "error", "Sign-in failed", error.message);
      });
    }
    window.addEventListener("message", function (event) {
      if (event.origin === window.location.origin && event.data && event.data.type === "mailintake-authorization") {
        window.setTimeout(function () { check(false); }, 100);
      }
    });
    check(false);
  }

  function waitForDevice(out, name) {
    api("GET", statusUrl(name)).then(function (now) {
      var outcome = now.device && now.device.outcome;
      if (outcome) {
        finish(out, outcome);
      } else {
        window.setTimeout(function () { waitForDevice(out, name); }, 2000);
      }
    }).catch(function (error) {
      show(out, "error", "Sign-in failed", error.message);
    });
  }

  function showDevice(out, answer) {
    show(out, "pending", "Waiting for the sign-in", answer.message || "");
    var p = document.createElement("p");
    p.append("Open ");
    // The server checks the address (https, or http on loopback); a link is made only for
    // http(s) all the same, anything else is shown as text.
    var uri = String(answer.verification_uri || "");
    if (/^https?:\/\//i.test(uri)) {
      var link = document.createElement("a");
      link.href = uri;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = uri;
      p.appendChild(link);
    } else {
      p.append(uri);
    }
    p.append(" and enter the code ");
    var code = document.createElement("code");
    code.className = "user-code";
    code.textContent = answer.user_code;
    p.appendChild(code);
    out.appendChild(p);
  }

  function authorize(button) {
    var name = button.dataset.authorize;
    var grant = button.dataset.grant;
    var out = document.getElementById("authorize-outcome");
    // Opened now, within the click, so that no popup blocker stops it; pointed at the
    // authorization endpoint once the server has made the request.
    var popup = grant === "authorization_code" ? window.open("", "mailintake-login", "popup,width=560,height=700") : null;
    show(out, "pending", grant === "password" ? "Signing in with the stored password…" : "Contacting the authorization server…");
    var before = null;
    api("GET", statusUrl(name)).then(function (state) {
      before = state;
      return api("POST", "/api/v1/mailboxes/" + encodeURIComponent(name) + "/authorize", {});
    }).then(function (answer) {
      if (answer.authorization_url) {
        if (!popup) {
          show(out, "error", "Popup blocked", "Allow popups for this page, then click Authorize again.");
          return;
        }
        popup.location.href = answer.authorization_url;
        show(out, "pending", "Waiting for the sign-in in the popup window…");
        waitForPopup(out, name, popup, before);
      } else if (answer.user_code) {
        showDevice(out, answer);
        waitForDevice(out, name);
      } else {
        finish(out, answer);
      }
    }).catch(function (error) {
      if (popup) popup.close();
      show(out, "error", "Sign-in failed", error.message);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-authorize]");
    if (button) {
      event.preventDefault();
      authorize(button);
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  document.addEventListener("DOMContentLoaded", function () { syncFields(document); });
  document.addEventListener("htmx:afterSettle", function () { syncFields(document); });
})();
