/* The enrolment page (/accounts/two-factor/setup/): django-otp-webauthn's script runs the passkey
 * registration; when it has registered one, reload the page, which then lists it (the first passkey also
 * passes the session's second factor) and offers to continue. */
(function () {
  "use strict";
  document.addEventListener("otp_webauthn.register_complete", function () {
    window.location.reload();
  });
})();
