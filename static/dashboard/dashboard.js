// Progressive enhancement only: every page works without this file. No eval, no inline handlers: the
// site's Content-Security-Policy allows scripts from our own static files only.
"use strict";

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

// --- Actions on the scorecard ------------------------------------------------------------------
// A refused action answers 200 with its column, the message next to the field (scorecard/actions.py). What htmx
// does not swap (403, 5xx) is said in the status region instead, so no click goes unanswered.

// A session that ended answers an htmx request with the login page (after the redirect): show it as
// a page, come back here after logging in, rather than swap a login form into a column.
document.addEventListener("htmx:beforeSwap", (event) => {
  const answered = event.detail.xhr.responseURL;
  if (answered && new URL(answered).pathname.startsWith("/login/")) {
    event.detail.shouldSwap = false;
    window.location.reload();
  }
});

document.addEventListener("htmx:responseError", (event) => {
  const flash = document.getElementById("flash");
  if (!flash) return;
  const status = event.detail.xhr.status;
  const message = document.createElement("p");
  message.className = "notice notice--error";
  message.textContent =
    status === 403
      ? "You may not do this here (403). Nothing was changed; reload the page to see what you may do."
      : `The server could not do this (${status}). Nothing was changed; try again in a moment.`;
  flash.replaceChildren(message);
  flash.focus();
});

// After an action the control that was used is gone (its column was replaced): put the keyboard on
// the first field that needs fixing, or on the status message that says what happened.
document.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.requestConfig?.verb !== "post") return;
  // Settle fires once per swapped element (each out-of-band part and the column): act once, on the
  // column that replaced the form's target.
  const column = event.target;
  if (!column.id || column.id !== event.detail.target?.id) return;
  const invalid = column.querySelector('[aria-invalid="true"]');
  const focus = invalid || document.getElementById("flash");
  if (focus) focus.focus({ preventScroll: !invalid });
  markFresh();
});

// --- Live data: a wall screen stays current ----------------------------------------------------
// Elements with data-poll="<seconds>" reload their own content (the page's htmx partial) that often,
// only while the tab is visible: a hidden tab costs the server nothing, and a tab coming back into
// view refreshes at once if its data is older than the interval. A region somebody is typing in is
// left alone until they are done, and the <details> they opened stay open across a refresh.
const polled = new Map(); // element -> time of its last refresh

function markFresh() {
  for (const element of polled.keys()) polled.set(element, Date.now());
}

function busy(region) {
  if (region.querySelector(".htmx-request")) return true; // an action is on its way: its answer wins
  const active = document.activeElement;
  if (active && region.contains(active) && active.matches("input, textarea, select")) return true;
  return [...region.querySelectorAll("input:not([type=hidden]), textarea")].some(
    (field) => field.value !== field.defaultValue,
  );
}

function openDetails(region) {
  return [...region.querySelectorAll("details[open]")].map((details) => {
    const host = details.parentElement.closest("[id]");
    return host ? [host.id, [...host.querySelectorAll("details")].indexOf(details)] : null;
  });
}

function reopen(keys) {
  for (const key of keys) {
    const host = key && document.getElementById(key[0]);
    const details = host?.querySelectorAll("details")[key[1]];
    if (details) details.open = true;
  }
}

async function refresh(region) {
  polled.set(region, Date.now());
  let response;
  try {
    response = await fetch(window.location.pathname + window.location.search, {
      headers: { "HX-Request": "true" },
      credentials: "same-origin",
    });
  } catch {
    return; // offline for a moment: the next tick tries again
  }
  if (response.redirected && new URL(response.url).pathname.startsWith("/login/")) {
    window.location.reload(); // the session ended: the page itself goes to the login form
    return;
  }
  if (!response.ok || busy(region)) return;
  const html = await response.text();
  const keys = openDetails(region);
  // charts.js releases the plots about to be replaced (htmx.swap fires no htmx:beforeSwap).
  region.dispatchEvent(new CustomEvent("readiness:beforerefresh", { bubbles: true }));
  htmx.swap(region, html, { swapStyle: "innerHTML" });
  reopen(keys);
}

function tick() {
  if (document.visibilityState !== "visible") return;
  for (const [region, last] of polled) {
    if (!region.isConnected) {
      polled.delete(region);
      continue;
    }
    const seconds = Number(region.dataset.poll) || 30;
    if (Date.now() - last >= seconds * 1000 && !busy(region)) refresh(region);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const region of document.querySelectorAll("[data-poll]")) polled.set(region, Date.now());
  if (polled.size === 0) return;
  window.setInterval(tick, 5000);
  document.addEventListener("visibilitychange", tick);
});
