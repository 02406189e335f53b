// Progressive enhancement only; every page works without script (CSP: script-src 'self').
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.classList.contains("danger") && form.dataset.confirm) {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  }
});

// "Copy" next to a secret shown once; the button stays hidden where the clipboard is absent.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", () => {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => {
        button.textContent = "Copied";
      });
    });
  }
});
