// WebAuthn ceremonies for idp's passkey forms (a file, not inline: the CSP forbids inline
// script). A <form data-passkey="register|login" data-options="URL"> asks data-options
// for the options (POST, CSRF token in X-CSRFToken), runs navigator.credentials.create
// or .get, puts the result as JSON into the form's hidden "credential" field and submits
// the form as usual; the server answers the post like any other form.
"use strict";

(function () {
  function toBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  }

  function toB64url(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(list) {
    return (list || []).map((c) => Object.assign({}, c, { id: toBytes(c.id) }));
  }

  // The JSON shape of PublicKeyCredential.toJSON() (WebAuthn L3), which py_webauthn reads.
  function encode(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response,
    };
  }

  async function ceremony(form) {
    const answer = await fetch(form.dataset.options, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": form.elements.csrf_token.value },
    });
    if (!answer.ok) throw new Error("The server refused to start (" + answer.status + ").");
    const options = await answer.json();
    options.challenge = toBytes(options.challenge);
    let credential;
    if (form.dataset.passkey === "register") {
      options.user.id = toBytes(options.user.id);
      options.excludeCredentials = decodeDescriptors(options.excludeCredentials);
      credential = await navigator.credentials.create({ publicKey: options });
    } else {
      options.allowCredentials = decodeDescriptors(options.allowCredentials);
      credential = await navigator.credentials.get({ publicKey: options });
    }
    form.elements.credential.value = JSON.stringify(encode(credential));
    form.submit(); // does not fire "submit" again
  }

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    const error = form.querySelector("[data-passkey-error]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!window.PublicKeyCredential) {
        error.textContent = "This browser does not support passkeys.";
        error.hidden = false;
        return;
      }
      error.hidden = true;
      ceremony(form).catch((err) => {
        error.textContent = err.name === "NotAllowedError"
          ? "The passkey request was cancelled or timed out."
          : err.message;
        error.hidden = false;
      });
    });
  }
})();
