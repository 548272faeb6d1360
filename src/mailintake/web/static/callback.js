/* The sign-in popup's last page: tell the page that opened it, then close. */
(function () {
  "use strict";
  var body = document.body;
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage(
      { type: "mailintake-authorization", outcome: body.dataset.outcome, message: body.dataset.message },
      window.location.origin
    );
    window.setTimeout(function () { window.close(); }, 1500);
  }
})();
