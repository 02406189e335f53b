// Progressive enhancement only; every page works without script.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.classList.contains("danger") && form.dataset.confirm) {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  }
});
