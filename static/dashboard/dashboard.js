// Progressive enhancement only: every page works without this file.
document.addEventListener("htmx:configRequest", (event) => {
  if (!event.detail.elt.matches("form.filters")) return;
  const formData = event.detail.formData;
  // Empty filters stay out of the URL htmx requests and pushes: a shared link reads "?team=fraud",
  // not "?team=fraud&stage=&risk_tier=&decision=&q=".
  for (const [name, value] of [...formData.entries()]) {
    if (value === "") formData.delete(name);
  }
  // Enter or "Apply" right after the filters applied themselves would fetch the same results again
  // and push a duplicate history entry, so Back would seem to do nothing.
  const wanted = new URLSearchParams(formData).toString();
  if (wanted === new URLSearchParams(window.location.search).toString()) event.preventDefault();
});
